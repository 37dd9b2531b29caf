/*
 * Several listening sockets at once (systemd Accept=no with a
 * ListenStream= for 143 and one for 993): the process systemd started
 * becomes a supervisor that forks one listener per socket and only
 * passes signals on.
 */
#ifndef IMAPGATE_SUPERVISE_H
#define IMAPGATE_SUPERVISE_H

/* The listening sockets are first .. first + n - 1.  Returns only in a
 * listener: the one socket it serves, the others closed.  The supervisor
 * itself exits here, with the worst of its listeners' statuses. */
int supervise(int first, int n);

#endif
