/*
 * Symbols of a running process: its modules as /proc/PID/maps lists them
 * now, reported to libdwfl, which opens each file only when one of its
 * addresses is looked up.
 */
#include "config.h"

#include "symbols_internal.h"
#include "target_permission.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *debuginfo_path;

static const Dwfl_Callbacks process_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

static void say_no_process(pid_t pid, char *message, size_t size)
{
    tool_say(message, size, "no process %d; pass the id of a running process",
             (int)pid);
}

/* `error` as dwfl_linux_proc_report returns it: an errno value, or -1
 * for libdwfl's own errors. */
static void say_report_error(pid_t pid, int error, char *message, size_t size)
{
    if (error == ENOENT || error == ESRCH)
        say_no_process(pid, message, size);
    else if (error == EACCES || error == EPERM)
        target_explain_refusal(pid, message, size);
    else
        tool_say(message, size, "cannot read the modules of process %d: %s",
                 (int)pid, error > 0 ? strerror(error) : dwfl_errmsg(-1));
}

static int count_module(Dwfl_Module *module, void **userdata, const char *name,
                        Dwarf_Addr start, void *count)
{
    (void)module, (void)userdata, (void)name, (void)start;
    ++*(unsigned *)count;
    return DWARF_CB_OK;
}

static bool report_modules(Dwfl *dwfl, pid_t pid, char *message, size_t size)
{
    dwfl_report_begin(dwfl);
    int error = dwfl_linux_proc_report(dwfl, pid);
    if (dwfl_report_end(dwfl, NULL, NULL) != 0 && error == 0)
        error = -1;
    if (error != 0) {
        say_report_error(pid, error, message, size);
        return false;
    }
    unsigned count = 0;
    dwfl_getmodules(dwfl, count_module, &count, 0);
    if (count == 0) {
        tool_say(message, size,
                 "process %d maps no files (it is exiting, or is a kernel "
                 "thread): there is nothing to symbolize", (int)pid);
        return false;
    }
    return true;
}

struct symbols *symbols_open_pid(pid_t pid, char *message, size_t message_size)
{
    tool_say(message, message_size, "%s", "");
    if (pid <= 0 || (kill(pid, 0) != 0 && errno == ESRCH)) {
        say_no_process(pid, message, message_size);
        return NULL;
    }
    struct symbols *symbols = calloc(1, sizeof(*symbols));
    if (symbols == NULL || (symbols->process = dwfl_begin(&process_callbacks)) == NULL) {
        tool_say(message, message_size,
                 "cannot symbolize process %d: out of memory", (int)pid);
        free(symbols);
        return NULL;
    }
    if (!report_modules(symbols->process, pid, message, message_size)) {
        symbols_close(symbols);
        return NULL;
    }
    return symbols;
}

/* The address the module's file is linked at counts from: its load bias,
 * known once its ELF file is open; without the file, where its mapping
 * starts (the same for shared libraries and position-independent
 * executables). */
static uint64_t load_bias(Dwfl_Module *module, Dwarf_Addr start)
{
    GElf_Addr bias = 0;
    return dwfl_module_getelf(module, &bias) != NULL ? bias : start;
}

bool symbols_pid_lookup(struct symbols *symbols, uint64_t pc,
                        struct symbols_frame *frame)
{
    Dwfl_Module *module = dwfl_addrmodule(symbols->process, pc - 1);
    if (module == NULL)
        return false;
    Dwarf_Addr start = 0;
    const char *name =
        dwfl_module_info(module, NULL, &start, NULL, NULL, NULL, NULL, NULL);
    frame->module = symbols_basename(name != NULL ? name : "");
    frame->module_offset = pc - load_bias(module, start);
    symbols_describe(symbols, module, pc, frame);
    return true;
}
