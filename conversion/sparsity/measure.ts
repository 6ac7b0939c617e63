import { allLinears, encoderLinears, type ModelWeights } from '../checkpoint/layout.js';

export interface LayerSparsity {
  module: string;
  shape: number[];
  parameters: number;
  zeros: number;
  sparsity: number;
}

export interface SparsityReport {
  layers: LayerSparsity[];
  /** Over the encoder Linear weights, the quantity the Prune OFA paper reports. */
  encoderLinearSparsity: number;
  /** Over every Linear weight, heads included. */
  allLinearSparsity: number;
}

function countZeros(data: Float32Array): number {
  let zeros = 0;
  for (let i = 0; i < data.length; i++) if (data[i] === 0) zeros++;
  return zeros;
}

export function measureSparsity(model: ModelWeights): SparsityReport {
  const layers = allLinears(model).map((linear) => {
    const zeros = countZeros(linear.weight.data);
    const parameters = linear.weight.data.length;
    return { module: linear.module, shape: linear.weight.shape, parameters, zeros, sparsity: zeros / parameters };
  });
  const encoderModules = new Set(encoderLinears(model).map((l) => l.module));
  const ratio = (selected: LayerSparsity[]) => {
    const total = selected.reduce((sum, l) => sum + l.parameters, 0);
    return total ? selected.reduce((sum, l) => sum + l.zeros, 0) / total : 0;
  };
  return {
    layers,
    encoderLinearSparsity: ratio(layers.filter((l) => encoderModules.has(l.module))),
    allLinearSparsity: ratio(layers),
  };
}
