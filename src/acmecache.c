/*
 * acmecache.c - see acmecache.h.  (Scaffolding: filled in by issue 16's work.)
 */
#include "autoconf.h"

#include "acmecache.h"
