// The AVX-512 (F, BW, DQ, VL) instruction-set macros, for a translation unit that enables them with
// '#pragma GCC target' (see isa_macros.h, which this includes). Include right after the pragma.
#include "isa_macros.h"
// GCC 12 warns "'__Y' may be used uninitialized" wherever an AVX-512 intrinsic that takes an
// _mm512_undefined_*() operand is inlined into this code (GCC bug 105593): thousands of false
// warnings under -Wall, 190 000 lines of build log, which hid any real one. The same loops are
// compiled with these warnings on in the portable and AVX2 translation units.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
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
