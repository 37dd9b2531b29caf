# imapgate -- see README.md.  `make check` and `make demo` install what is
# missing (Debian packages) first; `make` alone only builds.

PREFIX		?= /usr/local
SYSCONFDIR	?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
SBINDIR		?= $(PREFIX)/sbin
MANDIR		?= $(PREFIX)/share/man
UNITDIR		?= $(PREFIX)/lib/systemd/system
DESTDIR		?=

CC		?= cc
PKGS		 = gnutls libconfig libsystemd
HARDEN		 = -O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
WARN		 = -Wall -Wextra -Werror
CFLAGS		?= $(HARDEN)
ALL_CFLAGS	 = -std=c17 $(WARN) $(CFLAGS)
ALL_CPPFLAGS	 = -D_GNU_SOURCE \
		   -DCONFIG_PATH=\"$(SYSCONFDIR)/imapgate/imapgate.conf\" \
		   $(shell pkg-config --cflags $(PKGS)) $(CPPFLAGS)
# --as-needed: GnuTLS and libsystemd are linked only once code uses them
# (libsystemd is dlopen()ed when LISTEN_FDS is set); each linked library
# costs every connection its start-up time (DESIGN.md section 4).
ALL_LDFLAGS	 = -pie -Wl,-z,relro,-z,now -Wl,--as-needed $(LDFLAGS)
LDLIBS		 = $(shell pkg-config --libs $(PKGS)) -lcrypt

SRCS	= src/main.c src/config.c src/conn.c src/log.c src/imap_parse.c \
	  src/capability.c src/session.c src/sasl.c src/monitor.c src/msg.c \
	  src/auth_passwd.c src/backend_exec.c src/sandbox.c src/cidr.c \
	  src/proxy.c src/backend_connect.c src/backend_imap.c src/relay.c \
	  src/listener.c src/auth.c src/auth_checkpw.c src/auth_http.c \
	  src/penalty.c src/cram.c src/http_parse.c src/clock.c \
	  src/dl.c src/tls.c src/seccomp.c src/supervise.c
OBJS	= $(SRCS:.c=.o)
HDRS	= $(wildcard src/*.h)

# What the unit tests link: the pure parts, plus config and passwd-file.
UNIT_SRCS = src/imap_parse.c src/sasl.c src/capability.c src/config.c \
	    src/auth_passwd.c src/log.c src/cidr.c src/proxy.c src/cram.c \
	    src/penalty.c src/dl.c src/tls.c src/clock.c src/msg.c
UNIT_TESTS = $(wildcard tests/unit/test_*.c)

.PHONY: all check demo install uninstall clean fuzz unit unit-asan deps mutants

all: src/imapgate

src/imapgate: $(OBJS)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

src/%.o: src/%.c $(HDRS)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

tests/unit/run: $(UNIT_TESTS) tests/unit/unit.h $(UNIT_SRCS) $(HDRS)
	$(CC) $(ALL_CPPFLAGS) -Isrc -std=c17 $(WARN) -O1 -g -o $@ \
	    $(UNIT_TESTS) $(UNIT_SRCS) $(LDLIBS)

tests/unit/run-asan: $(UNIT_TESTS) tests/unit/unit.h $(UNIT_SRCS) $(HDRS)
	clang $(ALL_CPPFLAGS) -Isrc -std=c17 $(WARN) -O1 -g \
	    -fsanitize=address,undefined -fno-sanitize-recover=all \
	    -fno-omit-frame-pointer -o $@ $(UNIT_TESTS) $(UNIT_SRCS) $(LDLIBS)

# The daemon itself under ASan+UBSan, for a second run of the integration
# suite (tests/run): a sanitizer report in any log fails the test.
tests/asan/imapgate: $(SRCS) $(HDRS)
	mkdir -p tests/asan
	clang $(ALL_CPPFLAGS) -std=c17 $(WARN) -O1 -g \
	    -fsanitize=address,undefined -fno-sanitize-recover=all \
	    -fno-omit-frame-pointer -o $@ $(SRCS) $(LDLIBS)

# The compromised-session harness (issue 10, tests/harness/README.md):
# LD_PRELOADed into imapgate by tests that play a taken-over session.
# Every .c file there is linked in (extra actions register themselves).
EVIL_SRCS = $(wildcard tests/harness/*.c)
tests/harness/evil.so: $(EVIL_SRCS) tests/harness/evil.h $(HDRS)
	$(CC) -D_GNU_SOURCE -Isrc -std=c17 $(WARN) -O1 -g -shared -fPIC \
	    -o $@ $(EVIL_SRCS) -ldl

tests/fuzz/fuzz_parse: tests/fuzz/fuzz_parse.c src/imap_parse.c src/sasl.c \
    src/proxy.c src/http_parse.c src/imap_parse.h src/sasl.h src/proxy.h \
    src/http_parse.h
	clang -D_GNU_SOURCE -Isrc -std=c17 $(WARN) -O1 -g \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	    -o $@ tests/fuzz/fuzz_parse.c src/imap_parse.c src/sasl.c \
	    src/proxy.c src/http_parse.c

unit: tests/unit/run
	tests/unit/run

unit-asan: tests/unit/run-asan
	tests/unit/run-asan

# A longer fuzzing run than the one `make check` does: FUZZ_SECONDS=600.
FUZZ_SECONDS ?= 60
fuzz: tests/fuzz/fuzz_parse
	mkdir -p tests/fuzz/corpus
	tests/fuzz/fuzz_parse -max_total_time=$(FUZZ_SECONDS) \
	    tests/fuzz/corpus tests/fuzz/seeds

deps:
	tests/install-deps

check: deps
	$(MAKE) all tests/unit/run tests/unit/run-asan tests/fuzz/fuzz_parse \
	    tests/asan/imapgate tests/harness/evil.so
	tests/run

# The mutation check (not part of `make check`): every one-line mutant in
# tests/mutants/*.mutant must be killed by the tests it names.  Built from
# fresh objects here, each mutant then rebuilds only its file in a temp
# copy.  MUTANTS="-j 2 name ..." passes options and names to the runner.
mutants: all tests/unit/run tests/harness/evil.so
	tests/mutants/run $(MUTANTS)

demo: deps
	$(MAKE) all
	tests/demo

install: src/imapgate
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/imapgate $(DESTDIR)$(SYSCONFDIR)/xinetd.d \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5
	install -d -m 755 $(DESTDIR)/var/lib/imapgate/empty
	install -m 755 src/imapgate $(DESTDIR)$(SBINDIR)/imapgate
	for u in units/*; do \
	    sed -e 's|@SBINDIR@|$(SBINDIR)|g' \
	        -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' $$u \
	        > $(DESTDIR)$(UNITDIR)/$${u#units/}; \
	done
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	    etc/xinetd.d/imapgate > $(DESTDIR)$(SYSCONFDIR)/xinetd.d/imapgate
	test -e $(DESTDIR)$(SYSCONFDIR)/imapgate/imapgate.conf || \
	    install -m 644 etc/imapgate.conf \
	        $(DESTDIR)$(SYSCONFDIR)/imapgate/imapgate.conf
	install -m 644 man/imapgate.8 $(DESTDIR)$(MANDIR)/man8/imapgate.8
	install -m 644 man/imapgate.conf.5 \
	    $(DESTDIR)$(MANDIR)/man5/imapgate.conf.5
	install -d $(DESTDIR)$(SYSCONFDIR)/fail2ban/filter.d \
	    $(DESTDIR)$(SYSCONFDIR)/fail2ban/jail.d
	install -m 644 etc/fail2ban/filter.d/imapgate.conf \
	    $(DESTDIR)$(SYSCONFDIR)/fail2ban/filter.d/imapgate.conf
	install -m 644 etc/fail2ban/jail.d/imapgate.conf \
	    $(DESTDIR)$(SYSCONFDIR)/fail2ban/jail.d/imapgate.conf

# Everything install wrote, except an imapgate.conf that differs from the
# shipped example: that is the operator's.  Directories are removed only
# if empty, and only imapgate's own.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/imapgate
	for u in units/*; do rm -f $(DESTDIR)$(UNITDIR)/$${u#units/}; done
	# The listener's TLS pair before 143 and 993 shared one socket unit.
	rm -f $(DESTDIR)$(UNITDIR)/imapgate-listener-tls.socket \
	    $(DESTDIR)$(UNITDIR)/imapgate-listener-tls.service
	rm -f $(DESTDIR)$(SYSCONFDIR)/xinetd.d/imapgate
	rm -f $(DESTDIR)$(MANDIR)/man8/imapgate.8 \
	    $(DESTDIR)$(MANDIR)/man5/imapgate.conf.5
	rm -f $(DESTDIR)$(SYSCONFDIR)/fail2ban/filter.d/imapgate.conf \
	    $(DESTDIR)$(SYSCONFDIR)/fail2ban/jail.d/imapgate.conf
	! cmp -s etc/imapgate.conf \
	    $(DESTDIR)$(SYSCONFDIR)/imapgate/imapgate.conf || \
	    rm -f $(DESTDIR)$(SYSCONFDIR)/imapgate/imapgate.conf
	rmdir $(DESTDIR)$(SYSCONFDIR)/imapgate \
	    $(DESTDIR)/var/lib/imapgate/empty $(DESTDIR)/var/lib/imapgate \
	    2>/dev/null || true

clean:
	rm -f src/*.o src/imapgate tests/unit/run tests/unit/run-asan \
	    tests/fuzz/fuzz_parse tests/asan/imapgate tests/harness/evil.so
	rm -rf tests/__pycache__ tests/.pytest_cache .pytest_cache
