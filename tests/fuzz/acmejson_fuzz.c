/* acmejson_fuzz.c - scaffolding, replaced before this lands. */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>

#include "acmejson.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	(void)data;
	(void)size;
	return 0;
}
