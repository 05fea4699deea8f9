// gatemill HLS library: AXI4-Stream ports and the element codes the host exchanges with them.
#ifndef GATEMILL_AXIS_H
#define GATEMILL_AXIS_H

#include "gm_common.h"
#include <ap_axi_sdata.h>

namespace gm {

// Element codes of the ports: two's complement or unsigned in T::width bits; for a BIPOLAR
// element one bit, 1 = +1 and 0 = -1 (the encoding of gatemill's packing module).
template <class T, bool BIPOLAR>
struct codec {
    static ap_uint<T::width> encode(long long v) {
        if (BIPOLAR) return v > 0 ? 1 : 0;
        const T t = v;
        return t;
    }
    static long long decode(const ap_uint<T::width> &bits) {
        if (BIPOLAR) return bits ? 1 : -1;
        const T t = bits;
        return t.to_int64();
    }
};

// Input port: BEATS beats of AXI_W bits per sample; the low W bits are the packed word of
// the first layer. TLAST is not needed (the sample size is fixed) and is ignored.
template <int AXI_W, int W, unsigned BEATS>
void axis_in(hls::stream<ap_axiu<AXI_W, 0, 0, 0> > &s_axis, hls::stream<ap_uint<W> > &out) {
beats:
    for (unsigned b = 0; b < BEATS; b++) {
#pragma HLS PIPELINE II = 1
        const ap_axiu<AXI_W, 0, 0, 0> beat = s_axis.read();
        out.write(beat.data.range(W - 1, 0));
    }
}

// Output port: BEATS beats per sample, TLAST on the last beat of every sample (what an AXI
// DMA needs to end a transfer).
template <int AXI_W, int W, unsigned BEATS>
void axis_out(hls::stream<ap_uint<W> > &in, hls::stream<ap_axiu<AXI_W, 0, 0, 0> > &m_axis) {
beats:
    for (unsigned b = 0; b < BEATS; b++) {
#pragma HLS PIPELINE II = 1
        ap_axiu<AXI_W, 0, 0, 0> beat;
        beat.data = 0;
        beat.data.range(W - 1, 0) = in.read();
        beat.keep = -1;
        beat.strb = -1;
        beat.last = (b == BEATS - 1);
        m_axis.write(beat);
    }
}

} // namespace gm

#endif
