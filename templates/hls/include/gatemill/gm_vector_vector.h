// gatemill HLS library: the vector-vector unit (depthwise convolutions and average pooling
// after the sliding window), PE channels per cycle.
#ifndef GATEMILL_VECTOR_VECTOR_H
#define GATEMILL_VECTOR_VECTOR_H

#include "gm_common.h"

namespace gm {

// CONFIG_T (rendered per layer by gatemill) provides:
//   in_t, w_t, acc_t   element types: input code, weight, accumulator
//   IN_BIPOLAR         input codes 0/1 stand for -1/+1
//   C, K, PE           channels, window elements per channel and folding; CF = C / PE
//   PIXELS             windows per sample (OH * OW after a sliding window)
//
// Input: per window, K * CF words of PE elements in the sliding window's (k, channel) order
// (word k*CF + cf holds element k of channels cf*PE .. cf*PE+PE-1). Output: per window, CF
// words of PE accumulators (word cf holds channels cf*PE ..). Channel c's accumulator is
// sum over k of W[c][k] * x[k][c]; weights[p][k * CF + cf] is W[cf*PE + p][k].
template <class CONFIG_T>
void vector_vector(hls::stream<ap_uint<CONFIG_T::PE * CONFIG_T::in_t::width> > &in,
                   hls::stream<ap_uint<CONFIG_T::PE * CONFIG_T::acc_t::width> > &out,
                   const typename CONFIG_T::w_t weights[CONFIG_T::PE][CONFIG_T::K * CONFIG_T::CF]) {
    // PE weights are read every cycle: one memory per lane
#pragma HLS ARRAY_PARTITION variable = weights complete dim = 1
    typedef typename CONFIG_T::in_t in_t;
    typedef typename CONFIG_T::acc_t acc_t;
    const int ACC_BITS = acc_t::width;

    // the running sums of every channel: beats cycle through the CF groups of PE channels
    acc_t acc[CONFIG_T::CF][CONFIG_T::PE];
#pragma HLS ARRAY_PARTITION variable = acc complete dim = 2

pixels:
    for (unsigned px = 0; px < CONFIG_T::PIXELS; px++) {
        unsigned k = 0, cf = 0;
    beats:
        for (unsigned i = 0; i < CONFIG_T::K * CONFIG_T::CF; i++) {
#pragma HLS PIPELINE II = 1
            const ap_uint<CONFIG_T::PE * in_t::width> word = in.read();
            ap_uint<CONFIG_T::PE * ACC_BITS> result = 0;
        lanes:
            for (unsigned p = 0; p < CONFIG_T::PE; p++) {
#pragma HLS UNROLL
                const in_t x = lane<in_t>(word, p);
                // a partial sum stays within the accumulator's range: every product's range
                // contains 0 (see the IR's accumulator_range)
                const acc_t sum = (k == 0 ? acc_t(0) : acc[cf][p]) +
                                  value<in_t, CONFIG_T::IN_BIPOLAR>(x) * weights[p][i];
                acc[cf][p] = sum;
                set_lane<ACC_BITS>(result, p, sum);
            }
            if (k == CONFIG_T::K - 1) out.write(result);
            if (cf == CONFIG_T::CF - 1) {
                cf = 0;
                k++;
            } else {
                cf++;
            }
        }
    }
}

} // namespace gm

#endif
