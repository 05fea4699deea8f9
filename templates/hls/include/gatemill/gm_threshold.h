// gatemill HLS library: multi-threshold activation, PE channels per cycle.
#ifndef GATEMILL_THRESHOLD_H
#define GATEMILL_THRESHOLD_H

#include "gm_common.h"

namespace gm {

// CONFIG_T (rendered per layer by gatemill) provides:
//   in_t, thr_t, out_t   element types: input (often an accumulator), thresholds, output code
//   IN_BIPOLAR           input codes 0/1 stand for -1/+1
//   CHANNELS, PE         channels and folding; NF = CHANNELS / PE
//   PIXELS               channel vectors per sample
//   T                    thresholds per channel
//   OUT_BASE             output value when no threshold is passed (0 for a BIPOLAR output,
//                        whose code is then the count itself)
//
// Channel c = nf*PE + p passes threshold t when in >= thresholds[p][nf][t] if
// up[p][nf] == 1 (a positive scale), or when in <= thresholds[p][nf][t] if up[p][nf] == 0 (a
// negative scale flips the comparison). The output is OUT_BASE + (thresholds passed), exactly
// the IR's apply_thresholds.
template <class CONFIG_T>
void threshold(hls::stream<ap_uint<CONFIG_T::PE * CONFIG_T::in_t::width> > &in,
               hls::stream<ap_uint<CONFIG_T::PE * CONFIG_T::out_t::width> > &out,
               const typename CONFIG_T::thr_t thresholds[CONFIG_T::PE][CONFIG_T::NF][CONFIG_T::T],
               const ap_uint<1> up[CONFIG_T::PE][CONFIG_T::NF]) {
    // every PE lane compares against all its T thresholds in the same cycle
#pragma HLS ARRAY_PARTITION variable = thresholds complete dim = 1
#pragma HLS ARRAY_PARTITION variable = thresholds complete dim = 3
#pragma HLS ARRAY_PARTITION variable = up complete dim = 1
    typedef typename CONFIG_T::in_t in_t;
    typedef typename CONFIG_T::out_t out_t;
    const int OUT_BITS = out_t::width;
    unsigned nf = 0;
words:
    for (unsigned i = 0; i < CONFIG_T::PIXELS * CONFIG_T::NF; i++) {
#pragma HLS PIPELINE II = 1
        const ap_uint<CONFIG_T::PE * in_t::width> word = in.read();
        ap_uint<CONFIG_T::PE * OUT_BITS> result = 0;
    channels:
        for (unsigned p = 0; p < CONFIG_T::PE; p++) {
#pragma HLS UNROLL
            const ap_int<in_t::width + 1> x = value<in_t, CONFIG_T::IN_BIPOLAR>(lane<in_t>(word, p));
            ap_uint<16> count = 0;
        levels:
            for (unsigned t = 0; t < CONFIG_T::T; t++) {
#pragma HLS UNROLL
                const typename CONFIG_T::thr_t th = thresholds[p][nf][t];
                const bool pass = up[p][nf] ? (x >= th) : (x <= th);
                count += pass ? 1 : 0;
            }
            const out_t y = CONFIG_T::OUT_BASE + int(count);
            set_lane<OUT_BITS>(result, p, y);
        }
        out.write(result);
        nf = (nf == CONFIG_T::NF - 1) ? 0 : nf + 1;
    }
}

} // namespace gm

#endif
