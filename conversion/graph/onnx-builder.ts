import onnxProto from 'onnx-proto';

export const { onnx } = onnxProto;
export type ModelProto = onnxProto.onnx.ModelProto;
export type TensorProto = onnxProto.onnx.ITensorProto;

const DataType = onnx.TensorProto.DataType;
const AttributeType = onnx.AttributeProto.AttributeType;

export type ElementType = 'float32' | 'int8' | 'int32' | 'int64';
const elementTypes: Record<ElementType, number> = {
  float32: DataType.FLOAT,
  int8: DataType.INT8,
  int32: DataType.INT32,
  int64: DataType.INT64,
};

export type AttributeValue = number | number[] | string | { float: number } | TensorProto;

function bytesOf(data: Float32Array | Int8Array | Int32Array | BigInt64Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export function tensorProto(
  name: string,
  dims: number[],
  data: Float32Array | Int8Array | Int32Array | BigInt64Array,
): TensorProto {
  const dataType =
    data instanceof Float32Array
      ? DataType.FLOAT
      : data instanceof Int8Array
        ? DataType.INT8
        : data instanceof Int32Array
          ? DataType.INT32
          : DataType.INT64;
  return { name, dims, dataType, rawData: bytesOf(data) };
}

function attribute(name: string, value: AttributeValue): onnxProto.onnx.IAttributeProto {
  if (typeof value === 'number') return { name, type: AttributeType.INT, i: value };
  if (typeof value === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: AttributeType.INTS, ints: value };
  if ('float' in value) return { name, type: AttributeType.FLOAT, f: value.float };
  return { name, type: AttributeType.TENSOR, t: value };
}

/** Accumulates an ONNX graph; node outputs get unique names derived from a readable hint. */
export class GraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly initializers: TensorProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly usedNames = new Set<string>();
  private readonly constants = new Map<string, string>();

  private unique(hint: string): string {
    let name = hint;
    for (let i = 1; this.usedNames.has(name); i++) name = `${hint}_${i}`;
    this.usedNames.add(name);
    return name;
  }

  input(name: string, type: ElementType, shape: (number | string)[]): string {
    this.usedNames.add(name);
    this.inputs.push(valueInfo(name, type, shape));
    return name;
  }

  output(name: string, type: ElementType, shape: (number | string)[]): void {
    this.outputs.push(valueInfo(name, type, shape));
  }

  initializer(name: string, dims: number[], data: Float32Array | Int8Array | Int32Array | BigInt64Array): string {
    const unique = this.unique(name);
    this.initializers.push(tensorProto(unique, dims, data));
    return unique;
  }

  /** Small constants are shared by value so the graph stays readable. */
  constantInt64(values: number[], dims: number[] = [values.length]): string {
    const key = `i64:${dims}:${values}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.initializer(
        `const_${values.join('_').replaceAll('-', 'm')}`,
        dims,
        BigInt64Array.from(values, BigInt),
      );
      this.constants.set(key, name);
    }
    return name;
  }

  constantFloat(value: number): string {
    const key = `f32:${value}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.initializer(`const_f${this.constants.size}`, [], Float32Array.of(value));
      this.constants.set(key, name);
    }
    return name;
  }

  /** Adds a node; returns its output names. An empty-string input means "optional input omitted". */
  node(
    opType: string,
    inputs: string[],
    outputHint: string,
    attributes: Record<string, AttributeValue> = {},
    outputCount = 1,
    domain = '',
  ): string[] {
    const outputs = Array.from({ length: outputCount }, (_, i) =>
      this.unique(outputCount === 1 ? outputHint : `${outputHint}_${i}`),
    );
    this.nodes.push({
      opType,
      domain,
      name: this.unique(`${outputHint}/${opType}`),
      input: inputs,
      output: outputs,
      attribute: Object.entries(attributes).map(([key, value]) => attribute(key, value)),
    });
    return outputs;
  }

  /** Adds a single-output node and returns the output's name. */
  one(opType: string, inputs: string[], outputHint: string, attributes: Record<string, AttributeValue> = {}): string {
    return this.node(opType, inputs, outputHint, attributes)[0];
  }

  /** Adds a node whose outputs carry exactly the given names (graph outputs). */
  nodeNamed(
    opType: string,
    inputs: string[],
    outputs: string[],
    attributes: Record<string, AttributeValue> = {},
  ): void {
    for (const output of outputs) this.usedNames.add(output);
    this.nodes.push({
      opType,
      name: this.unique(`${outputs[0]}/${opType}`),
      input: inputs,
      output: outputs,
      attribute: Object.entries(attributes).map(([key, value]) => attribute(key, value)),
    });
  }

  build(graphName: string, producer: string, producerVersion: string): ModelProto {
    return onnx.ModelProto.create({
      irVersion: 8,
      producerName: producer,
      producerVersion,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
  }
}

function valueInfo(name: string, type: ElementType, shape: (number | string)[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: elementTypes[type],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export function encodeModel(model: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

export function decodeModel(bytes: Uint8Array): ModelProto {
  return onnx.ModelProto.decode(bytes);
}
