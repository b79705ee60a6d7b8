#ifndef GATEWAY_CLUSTER_CHIREDIS_SHIM_H
#define GATEWAY_CLUSTER_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#endif
