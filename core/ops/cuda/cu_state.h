#ifndef LATHE_CU_STATE_H
#define LATHE_CU_STATE_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
void lt_cu_fill_launch(float *x, float v, size_t n, void *stream);
#ifdef __cplusplus
}
#endif
#endif
