/* cser.h: the whole public API of libcser (communication-efficient SGD with error
 * reset and its baselines). Include this, or the one header of a concern. */
#ifndef CSER_CSER_H
#define CSER_CSER_H

#include "cser/status.h"
#include "cser/version.h"
#include "cser/rng.h"
#include "cser/params.h"
#include "cser/compressor.h"
#include "cser/comm.h"
#include "cser/psync.h"
#include "cser/optim.h"
#include "cser/nn.h"
#include "cser/data.h"
#include "cser/train.h"

#endif
