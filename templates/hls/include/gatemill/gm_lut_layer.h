// gatemill HLS library: sparse neurons given as explicit truth tables (LutLayer).
#ifndef GATEMILL_LUT_LAYER_H
#define GATEMILL_LUT_LAYER_H

#include "gm_common.h"

namespace gm {

// CONFIG_T (rendered per layer by gatemill) provides:
//   in_t, out_t            element code types (BIPOLAR: one bit, 1 = +1)
//   idx_t                  type of an input index
//   IN_FEATURES, NEURONS   input and output lengths
//   FANIN, ENTRIES         inputs per neuron, table entries per neuron (2^(FANIN * in bits))
//   IN_LANES, OUT_LANES    elements per input / output word
//
// The address of neuron n holds the code of its input j at bits [j*b, (j+1)*b), b the input
// width (the IR's address convention); the output is tables[n][address], an out_t code.
// The whole input vector is buffered: a neuron may read any input.
template <class CONFIG_T>
void lut_layer(hls::stream<ap_uint<CONFIG_T::IN_LANES * CONFIG_T::in_t::width> > &in,
               hls::stream<ap_uint<CONFIG_T::OUT_LANES * CONFIG_T::out_t::width> > &out,
               const typename CONFIG_T::idx_t indices[CONFIG_T::NEURONS][CONFIG_T::FANIN],
               const typename CONFIG_T::out_t tables[CONFIG_T::NEURONS][CONFIG_T::ENTRIES]) {
#pragma HLS ARRAY_PARTITION variable = tables complete dim = 1
    const int IN_BITS = CONFIG_T::in_t::width;
    const int OUT_BITS = CONFIG_T::out_t::width;
    ap_uint<IN_BITS> x[CONFIG_T::IN_FEATURES];
#pragma HLS ARRAY_PARTITION variable = x complete
read:
    for (unsigned i = 0; i < CONFIG_T::IN_FEATURES / CONFIG_T::IN_LANES; i++) {
#pragma HLS PIPELINE II = 1
        const ap_uint<CONFIG_T::IN_LANES * IN_BITS> word = in.read();
        for (unsigned k = 0; k < CONFIG_T::IN_LANES; k++) {
#pragma HLS UNROLL
            x[i * CONFIG_T::IN_LANES + k] = get_lane<IN_BITS>(word, k);
        }
    }
write:
    for (unsigned o = 0; o < CONFIG_T::NEURONS / CONFIG_T::OUT_LANES; o++) {
#pragma HLS PIPELINE II = 1
        ap_uint<CONFIG_T::OUT_LANES * OUT_BITS> word = 0;
    neurons:
        for (unsigned l = 0; l < CONFIG_T::OUT_LANES; l++) {
#pragma HLS UNROLL
            const unsigned n = o * CONFIG_T::OUT_LANES + l;
            ap_uint<CONFIG_T::FANIN * IN_BITS> address = 0;
        gather:
            for (unsigned j = 0; j < CONFIG_T::FANIN; j++) {
#pragma HLS UNROLL
                address.range((j + 1) * IN_BITS - 1, j * IN_BITS) = x[indices[n][j]];
            }
            set_lane<OUT_BITS>(word, l, tables[n][address]);
        }
        out.write(word);
    }
}

} // namespace gm

#endif
