// gatemill HLS library: the elementwise sum of two branches (a residual connection).
#ifndef GATEMILL_ADD_H
#define GATEMILL_ADD_H

#include "gm_common.h"

namespace gm {

// CONFIG_T (rendered per layer by gatemill) provides:
//   in0_t, in1_t, acc_t  element types of the two inputs and of the sum
//   PE                   elements per word, on both inputs and the output
//   BEATS                words per sample
//   IN0_BIPOLAR, IN1_BIPOLAR  input codes 0/1 stand for -1/+1
//   A0, A1               the integer weights: acc = A0 * x0 + A1 * x1, exactly the IR's Add
// A threshold kernel follows when the layer has an activation.
template <class CONFIG_T>
void add(hls::stream<ap_uint<CONFIG_T::PE * CONFIG_T::in0_t::width> > &in0,
         hls::stream<ap_uint<CONFIG_T::PE * CONFIG_T::acc_t::width> > &out,
         hls::stream<ap_uint<CONFIG_T::PE * CONFIG_T::in1_t::width> > &in1) {
    typedef typename CONFIG_T::acc_t acc_t;
words:
    for (unsigned i = 0; i < CONFIG_T::BEATS; i++) {
#pragma HLS PIPELINE II = 1
        const ap_uint<CONFIG_T::PE * CONFIG_T::in0_t::width> a = in0.read();
        const ap_uint<CONFIG_T::PE * CONFIG_T::in1_t::width> b = in1.read();
        ap_uint<CONFIG_T::PE * acc_t::width> result = 0;
    lanes:
        for (unsigned p = 0; p < CONFIG_T::PE; p++) {
#pragma HLS UNROLL
            typedef typename CONFIG_T::in0_t in0_t;
            typedef typename CONFIG_T::in1_t in1_t;
            const acc_t sum =
                acc_t(CONFIG_T::A0) * value<in0_t, CONFIG_T::IN0_BIPOLAR>(lane<in0_t>(a, p)) +
                acc_t(CONFIG_T::A1) * value<in1_t, CONFIG_T::IN1_BIPOLAR>(lane<in1_t>(b, p));
            set_lane<acc_t::width>(result, p, sum);
        }
        out.write(result);
    }
}

} // namespace gm

#endif
