// Minimal stand-in for Vitis HLS's ap_axi_sdata.h, for C simulation with g++ only.
//
// gatemill's C simulation compiles with the open-source ap_types headers, which do not carry
// this file. Only the members the generated design uses exist. This folder is on g++'s include
// path alone: the Vitis HLS script never adds it, so Vitis uses its own definition.
#ifndef GATEMILL_CSIM_AP_AXI_SDATA_H
#define GATEMILL_CSIM_AP_AXI_SDATA_H

#include <ap_int.h>

template <int D, int U, int TI, int TD>
struct ap_axiu {
    ap_uint<D> data;
    ap_uint<(D + 7) / 8> keep;
    ap_uint<(D + 7) / 8> strb;
    ap_uint<1> last;
};

#endif
