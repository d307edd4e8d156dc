/* Why the kernel refuses the tools another process. */
#ifndef MALLOCDEBUG_TARGET_PERMISSION_H
#define MALLOCDEBUG_TARGET_PERMISSION_H

#include <stddef.h>
#include <sys/types.h>

/* One line, "not permitted to read process PID: ...", on why reading or
 * tracing `pid` was refused (EPERM or EACCES) and what to do: another
 * user owns it, it is not dumpable, another process traces it, Yama's
 * ptrace_scope forbids it, or something else (a security module, a
 * seccomp filter) does. */
void target_explain_refusal(pid_t pid, char *message, size_t message_size);

#endif
