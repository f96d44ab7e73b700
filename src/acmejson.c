/*
 * acmejson.c - see acmejson.h.  (Scaffolding: filled in by issue 16's work.)
 */
#include "autoconf.h"

#include "acmejson.h"
