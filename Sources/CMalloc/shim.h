#ifndef C_MALLOC_SHIM_H
#define C_MALLOC_SHIM_H
// glibc's malloc tuning (mallopt), which Swift's Glibc module does not include.
#include <malloc.h>
#endif
