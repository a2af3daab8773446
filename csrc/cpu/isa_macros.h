// The instruction-set macros for a translation unit that enables AVX2 + FMA + F16C (or more) with
// '#pragma GCC target': g++ does not define them for a pragma, and the headers included after it
// (sleef.h, at::vec) choose their declarations by them. Include right after the pragma.
#ifndef __AVX__
#define __AVX__ 1
#endif
#ifndef __AVX2__
#define __AVX2__ 1
#endif
#ifndef __FMA__
#define __FMA__ 1
#endif
#ifndef __F16C__
#define __F16C__ 1
#endif
