/* SPDX-License-Identifier: MIT */
#ifndef VMSCOPE_MONITOR_LSTSQ_H
#define VMSCOPE_MONITOR_LSTSQ_H

#include <stddef.h>

/*
 * Least squares min |A theta - b| for A rows x d (row-major, overwritten)
 * and b (rows long, at least d; overwritten): columns scaled to unit norm,
 * then LAPACK's dgelsd. 0, -ENOMEM or -EDOM.
 */
int arx_lstsq(double *A, size_t rows, int d, double *b, double *theta, int *ret_rank);

#endif
