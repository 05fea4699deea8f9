// gatemill HLS library: the concatenation of two branches along the channels.
#ifndef GATEMILL_CONCAT_H
#define GATEMILL_CONCAT_H

#include "gm_common.h"

namespace gm {

// CONFIG_T (rendered per layer by gatemill) provides:
//   in0_t, in1_t, out_t  element types of the two inputs and of the output (values unchanged)
//   PE                   elements per word, on both inputs and the output
//   PIXELS               channel vectors per sample
//   BEATS0, BEATS1       words of each input per channel vector
// Per channel vector, the words of input 0, then those of input 1: the IR's Concat.
template <class CONFIG_T>
void concat(hls::stream<ap_uint<CONFIG_T::PE * CONFIG_T::in0_t::width> > &in0,
            hls::stream<ap_uint<CONFIG_T::PE * CONFIG_T::out_t::width> > &out,
            hls::stream<ap_uint<CONFIG_T::PE * CONFIG_T::in1_t::width> > &in1) {
    typedef typename CONFIG_T::out_t out_t;
pixels:
    for (unsigned px = 0; px < CONFIG_T::PIXELS; px++) {
    words:
        for (unsigned i = 0; i < CONFIG_T::BEATS0 + CONFIG_T::BEATS1; i++) {
#pragma HLS PIPELINE II = 1
            ap_uint<CONFIG_T::PE * out_t::width> result = 0;
            if (i < CONFIG_T::BEATS0) {
                const ap_uint<CONFIG_T::PE * CONFIG_T::in0_t::width> a = in0.read();
                for (unsigned p = 0; p < CONFIG_T::PE; p++) {
#pragma HLS UNROLL
                    const out_t v = lane<typename CONFIG_T::in0_t>(a, p);
                    set_lane<out_t::width>(result, p, v);
                }
            } else {
                const ap_uint<CONFIG_T::PE * CONFIG_T::in1_t::width> b = in1.read();
                for (unsigned p = 0; p < CONFIG_T::PE; p++) {
#pragma HLS UNROLL
                    const out_t v = lane<typename CONFIG_T::in1_t>(b, p);
                    set_lane<out_t::width>(result, p, v);
                }
            }
            out.write(result);
        }
    }
}

} // namespace gm

#endif
