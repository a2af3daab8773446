// The AVX-512 (F, BW, DQ, VL) instruction-set macros, for a translation unit that enables them with
// '#pragma GCC target' (see isa_macros.h, which this includes). Include right after the pragma.
#include "isa_macros.h"
#ifndef __AVX512F__
#define __AVX512F__ 1
#endif
#ifndef __AVX512BW__
#define __AVX512BW__ 1
#endif
#ifndef __AVX512DQ__
#define __AVX512DQ__ 1
#endif
#ifndef __AVX512VL__
#define __AVX512VL__ 1
#endif
