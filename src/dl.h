/*
 * Libraries loaded when first needed rather than linked: each linked
 * library costs every connection its start-up (bench/library-startup).
 */
#ifndef IMAPGATE_DL_H
#define IMAPGATE_DL_H

/* sym from lib, loaded now if need be; NULL (logged) if unavailable. */
void *dl_symbol(const char *lib, const char *sym);

#endif
