/*
 * dlopen() on first use.  The handle is kept: callers cache the symbol.
 */
#include <dlfcn.h>
#include <stddef.h>

#include "dl.h"
#include "log.h"

void *
dl_symbol(const char *lib, const char *sym)
{
	void *h, *p = NULL;

	if ((h = dlopen(lib, RTLD_NOW | RTLD_LOCAL)) != NULL)
		p = dlsym(h, sym);
	if (p == NULL)
		log_err("%s: %s", lib, dlerror());
	return p;
}
