// gatemill HLS library: per-channel sums over every position of a sample (global average
// pooling, the sum or mean over a set's elements; the 1/N belongs to what follows), PE
// channels per cycle.
#ifndef GATEMILL_GLOBAL_SUM_H
#define GATEMILL_GLOBAL_SUM_H

#include "gm_common.h"

namespace gm {

// CONFIG_T (rendered per layer by gatemill) provides:
//   in_t, acc_t        element types: input code, sum
//   IN_BIPOLAR         input codes 0/1 stand for -1/+1
//   C, PE              channels and folding; CF = C / PE
//   POSITIONS          positions per sample (H * W, or a set's elements)
//
// Input: POSITIONS * CF words of PE elements, channels last. Output: CF words of PE sums
// (word cf holds channels cf*PE .. cf*PE+PE-1), after the last position.
template <class CONFIG_T>
void global_sum(hls::stream<ap_uint<CONFIG_T::PE * CONFIG_T::in_t::width> > &in,
                hls::stream<ap_uint<CONFIG_T::PE * CONFIG_T::acc_t::width> > &out) {
    typedef typename CONFIG_T::in_t in_t;
    typedef typename CONFIG_T::acc_t acc_t;
    const int ACC_BITS = acc_t::width;

    acc_t acc[CONFIG_T::CF][CONFIG_T::PE];
#pragma HLS ARRAY_PARTITION variable = acc complete dim = 2

    unsigned pos = 0, cf = 0;
beats:
    for (unsigned i = 0; i < CONFIG_T::POSITIONS * CONFIG_T::CF; i++) {
#pragma HLS PIPELINE II = 1
        const ap_uint<CONFIG_T::PE * in_t::width> word = in.read();
        ap_uint<CONFIG_T::PE * ACC_BITS> result = 0;
    lanes:
        for (unsigned p = 0; p < CONFIG_T::PE; p++) {
#pragma HLS UNROLL
            const acc_t sum = (pos == 0 ? acc_t(0) : acc[cf][p]) +
                              value<in_t, CONFIG_T::IN_BIPOLAR>(lane<in_t>(word, p));
            acc[cf][p] = sum;
            set_lane<ACC_BITS>(result, p, sum);
        }
        if (pos == CONFIG_T::POSITIONS - 1) out.write(result);
        if (cf == CONFIG_T::CF - 1) {
            cf = 0;
            pos++;
        } else {
            cf++;
        }
    }
}

} // namespace gm

#endif
