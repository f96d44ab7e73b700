/*
 * acmecrypto.c - see acmecrypto.h.  (Scaffolding: filled in by issue 16's work.)
 */
#include "autoconf.h"

#include "acmecrypto.h"
