/* SPDX-License-Identifier: LGPL-2.1 OR MIT */
/*
 * libftvm - attach application state to a connection, for failover
 *
 * SYNOPSIS
 *	#include <ftvm.h>
 *
 *	int ftvm_checkpoint(int fd, const void *blob, size_t len);
 *	ssize_t ftvm_restore_blob(int fd, void *buf, size_t len);
 *	const char *ftvm_strerror(void);
 *
 *	Link with -lftvm (user/libftvm/libftvm.a).
 *
 * DESCRIPTION
 *	A service that runs in a VM protected by ftvm keeps, per connected
 *	TCP socket, an opaque blob of application state (at most
 *	FTVM_BLOB_MAX = 4096 bytes) in ftvm.ko, so that a snapshot of the
 *	session carries it and the backup VM can hand it back.
 *
 *	ftvm_checkpoint() attaches @blob to the connected socket @fd,
 *	replacing what was attached before, and in the same step pins the
 *	socket's byte streams: the blob is taken to account for every byte
 *	the service has read from @fd and written to it so far.  Call it
 *	when the service's state for the connection is consistent with
 *	what it has read and written, typically right after sending a
 *	reply.  A snapshot taken while the socket is still where the last
 *	checkpoint left it restores the blob and the connection together;
 *	one taken after further reads or writes is flagged stale.
 *
 *	ftvm_restore_blob() copies the blob attached to @fd into @buf (at
 *	most @len bytes) and returns its length.  On a connection the
 *	service accept()ed after a restore, that is the state it had when
 *	the session was captured.  It fails with ENOENT when no state is
 *	attached: a new connection.
 *
 *	Both are one generic netlink request to ftvm.ko over a socket the
 *	library opens on first use, one per thread.  They need no
 *	privilege: owning @fd is enough.
 *
 * RETURN VALUE
 *	ftvm_checkpoint() returns 0, ftvm_restore_blob() the blob's length;
 *	on error both return -1 and set errno (ENOTCONN: @fd is not an
 *	established TCP connection; EMSGSIZE: @len above FTVM_BLOB_MAX;
 *	ENOENT: nothing attached, or ftvm.ko not loaded; ENOMEM, ENOBUFS:
 *	the kernel was short of memory, try again: a failed
 *	ftvm_restore_blob() leaves the state attached, and after
 *	ENOBUFS from ftvm_checkpoint() the new blob may or may not be
 *	attached).
 *	ftvm_strerror() returns the kernel's explanation of the last error
 *	of the calling thread, or "".
 */
#ifndef LIBFTVM_H
#define LIBFTVM_H

#include <stddef.h>
#include <sys/types.h>

#ifndef FTVM_BLOB_MAX
#define FTVM_BLOB_MAX	4096
#endif

int ftvm_checkpoint(int fd, const void *blob, size_t len);
ssize_t ftvm_restore_blob(int fd, void *buf, size_t len);
const char *ftvm_strerror(void);

#endif
