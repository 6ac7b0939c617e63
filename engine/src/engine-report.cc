// What an engine instance reports about itself: per encoder linear, the densities packing measured and the kernel
// chosen (addon info(), convert's manifest record, bench's start-up lines).
#include <sstream>

#include "engine.h"

namespace sbs {

std::vector<Engine::LinearReport> Engine::linears() const {
  static const char* const names[] = {"qkv", "attention_output", "intermediate", "output"};
  std::vector<LinearReport> out;
  for (size_t l = 0; l < model_.layers.size(); l++) {
    const auto& layer = model_.layers[l];
    const QuantizedLinear* linears[] = {&layer.qkv, &layer.attention_output, &layer.intermediate, &layer.output};
    for (int kind = 0; kind < 4; kind++) out.push_back({int(l), names[kind], &linears[kind]->packed});
  }
  return out;
}

std::string Engine::describe_layers() const {
  const std::vector<LinearReport> all = linears();
  std::ostringstream out;
  for (int kind = 0; kind < 4; kind++) {
    int counts[3] = {0, 0, 0};
    double quads = 0, blocks = 0;
    for (size_t i = kind; i < all.size(); i += 4) {
      counts[int(all[i].packed->kernel)]++;
      quads += all[i].packed->densities.quads;
      blocks += all[i].packed->densities.out_blocks;
    }
    const double layers = double(model_.layers.size());
    if (kind) out << "; ";
    out << all[kind].name << ":";
    for (LinearKernel k : {LinearKernel::dense, LinearKernel::sparse_quads, LinearKernel::out_blocks})
      if (counts[int(k)]) out << " " << counts[int(k)] << "/" << model_.layers.size() << " " << linear_kernel_name(k);
    out << " (quad density " << quads / layers << ", 4-output-block density " << blocks / layers << ")";
  }
  return out.str();
}

}  // namespace sbs
