/*
 * acme.c - see acme.h.  (Scaffolding: filled in by issue 16's work.)
 */
#include "autoconf.h"

#include "acme.h"
