/*
 * The tools' symbol table: return addresses of this very process (a call
 * made from a known line, a function with a C++ name), the stack log of
 * a probe that has exited, and synthetic logs whose modules are gone,
 * changed, overlapping or never looked up.
 */
#include "config.h"
#include "log_builder.h"
#include "test_util.h"
#include "../tools/stack_names.h"
#include "../tools/symbols.h"
#include "../tools/symbols_internal.h"

#include <check.h>
#include <elf.h>
#include <elfutils/libdwelf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libgen.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MESSAGE_SIZE 512
#define PROBE "tests/stacklog_probe"
#define INLINE_PROBE "tests/inline_probe"

/* ---- return addresses of this process ---- */

static uint64_t recorded_return;

__attribute__((noinline, noclone)) static void record_return_address(void)
{
    recorded_return = (uint64_t)(uintptr_t)__builtin_return_address(0);
    __asm__ volatile("" ::: "memory");
}

/* Calls record_return_address from the line it returns. */
__attribute__((noinline, noclone)) static unsigned call_from_known_line(void)
{
    unsigned line = __LINE__; record_return_address();
    __asm__ volatile("" ::: "memory"); /* not a tail call */
    return line;
}

/* A C function under a C++ name, as a C++ compiler would have named
 * mallocdbg::sample::probe(int). */
__attribute__((noinline, noclone, used)) void demangle_target(void)
    __asm__("_ZN9mallocdbg6sample5probeEi");
void demangle_target(void)
{
    __asm__ volatile("nop; nop; nop; nop; nop; nop; nop; nop");
}

/* ---- this process's own module, as dl_iterate_phdr sees it ---- */

struct own_module {
    uint64_t load_bias, start, end;
    uint32_t build_id_size;
    uint8_t build_id[MDLOG_BUILD_ID_MAX];
};

static void own_build_id(const struct dl_phdr_info *info, const ElfW(Phdr) *note,
                         struct own_module *own)
{
    const char *at = (const char *)(info->dlpi_addr + note->p_vaddr);
    const char *end = at + note->p_memsz;
    while (at + sizeof(ElfW(Nhdr)) <= end) {
        const ElfW(Nhdr) *header = (const ElfW(Nhdr) *)at;
        const char *name = at + sizeof(*header);
        const char *desc = name + ((header->n_namesz + 3) & ~3u);
        if (header->n_type == NT_GNU_BUILD_ID && header->n_namesz == 4 &&
            memcmp(name, "GNU", 4) == 0 && header->n_descsz <= MDLOG_BUILD_ID_MAX) {
            own->build_id_size = header->n_descsz;
            memcpy(own->build_id, desc, header->n_descsz);
            return;
        }
        at = desc + ((header->n_descsz + 3) & ~3u);
    }
}

/* The first object the loader lists is the executable. */
static int first_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct own_module *own = data;
    *own = (struct own_module){.load_bias = info->dlpi_addr, .start = UINT64_MAX};
    for (unsigned i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *phdr = &info->dlpi_phdr[i];
        uint64_t from = info->dlpi_addr + phdr->p_vaddr;
        if (phdr->p_type == PT_LOAD) {
            if (from < own->start)
                own->start = from;
            if (from + phdr->p_memsz > own->end)
                own->end = from + phdr->p_memsz;
        } else if (phdr->p_type == PT_NOTE && own->build_id_size == 0) {
            own_build_id(info, phdr, own);
        }
    }
    return 1;
}

static struct own_module own_module(void)
{
    struct own_module own;
    dl_iterate_phdr(first_object, &own);
    return own;
}

static const char *own_path(void)
{
    static char path[PATH_MAX];
    ssize_t length = readlink("/proc/self/exe", path, sizeof(path) - 1);
    ck_assert_int_gt(length, 0);
    path[length] = '\0';
    return path;
}

static const char *last_component(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static struct symbols *open_own_process(void)
{
    char message[MESSAGE_SIZE];
    struct symbols *symbols = symbols_open_pid(getpid(), message, sizeof(message));
    ck_assert_msg(symbols != NULL, "%s", message);
    ck_assert_str_eq(message, "");
    return symbols;
}

/* The frame of the call in call_from_known_line, as this process's own
 * executable describes it. */
static void assert_known_call(const struct symbols_frame *frame, unsigned line)
{
    ck_assert_ptr_nonnull(frame->function);
    ck_assert_str_eq(frame->function, "call_from_known_line");
    ck_assert_uint_eq(frame->function_offset,
                      recorded_return - (uintptr_t)call_from_known_line);
    ck_assert_ptr_nonnull(frame->file);
    ck_assert_str_eq(last_component(frame->file), "check_symbols.c");
    ck_assert_uint_eq(frame->line, line);
    ck_assert_str_eq(frame->module, last_component(own_path()));
    ck_assert_uint_eq(frame->module_offset,
                      recorded_return - own_module().load_bias);
}

START_TEST(test_own_call_gives_function_file_and_line)
{
    unsigned line = call_from_known_line();
    struct symbols *symbols = open_own_process();
    struct symbols_frame frame;
    ck_assert(symbols_lookup(symbols, recorded_return, SYMBOLS_ANY_MODULE, &frame));
    ck_assert_uint_eq(frame.pc, recorded_return);
    assert_known_call(&frame, line);

    /* Again, from the cache: the same strings. */
    struct symbols_frame again;
    ck_assert(symbols_lookup(symbols, recorded_return, SYMBOLS_ANY_MODULE, &again));
    ck_assert_ptr_eq(again.function, frame.function);
    ck_assert_ptr_eq(again.file, frame.file);
    ck_assert_uint_eq(again.line, frame.line);
    symbols_close(symbols);
}
END_TEST

START_TEST(test_cxx_name_is_demangled)
{
    struct symbols *symbols = open_own_process();
    uint64_t inside = (uintptr_t)demangle_target + 3;
    struct symbols_frame frame;
    ck_assert(symbols_lookup(symbols, inside, SYMBOLS_ANY_MODULE, &frame));
    ck_assert_ptr_nonnull(frame.function);
    ck_assert_str_eq(frame.function, "mallocdbg::sample::probe(int)");
    ck_assert_uint_eq(frame.function_offset, 3);
    ck_assert_str_eq(frame.module, last_component(own_path()));
    symbols_close(symbols);
}
END_TEST

START_TEST(test_address_in_no_module)
{
    struct symbols *symbols = open_own_process();
    struct symbols_frame frame;
    /* The second page: below vm.mmap_min_addr, never mapped. */
    uint64_t nowhere = 0x1010;
    ck_assert(!symbols_lookup(symbols, nowhere, SYMBOLS_ANY_MODULE, &frame));
    ck_assert_ptr_null(frame.module);
    ck_assert_ptr_null(frame.function);
    ck_assert(!symbols_lookup(symbols, 0, SYMBOLS_ANY_MODULE, &frame));
    symbols_close(symbols);
}
END_TEST

/* ---- processes that cannot be read ---- */

static void assert_pid_fails(pid_t pid, const char *expected)
{
    char message[MESSAGE_SIZE];
    ck_assert_ptr_null(symbols_open_pid(pid, message, sizeof(message)));
    ck_assert_str_eq(message, expected);
    ck_assert_ptr_null(symbols_open_pid(pid, NULL, 0));
}

START_TEST(test_open_no_process)
{
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(child, NULL, 0), child);
    char expected[MESSAGE_SIZE];
    snprintf(expected, sizeof(expected),
             "no process %d; pass the id of a running process", (int)child);
    assert_pid_fails(child, expected);
    assert_pid_fails(0, "no process 0; pass the id of a running process");
    assert_pid_fails(-7, "no process -7; pass the id of a running process");
}
END_TEST

/* As root, the test becomes another user first; the parent (the test
 * runner) then belongs to someone else. */
START_TEST(test_open_another_users_process)
{
    pid_t target = getppid();
    if (geteuid() == 0)
        ck_assert_int_eq(setresuid(65534, 65534, 65534), 0);
    else
        target = 1;
    char proc[32];
    struct stat status;
    snprintf(proc, sizeof(proc), "/proc/%d", (int)target);
    ck_assert_int_eq(stat(proc, &status), 0);
    if (status.st_uid == geteuid())
        return; /* no process of another user to try */
    char expected[MESSAGE_SIZE];
    snprintf(expected, sizeof(expected),
             "not permitted to read process %d: it belongs to another user "
             "(uid %u); run as that user or as root",
             (int)target, (unsigned)status.st_uid);
    assert_pid_fails(target, expected);
}
END_TEST

/* ---- the log of a probe that has exited ---- */

static char directory[256];

static void make_directory(void)
{
    snprintf(directory, sizeof(directory), "/tmp/md-symbols-%d", (int)getpid());
    ck_assert(mkdir(directory, 0700) == 0 || errno == EEXIST);
}

static void remove_directory(const char *log_path)
{
    unlink(log_path);
    rmdir(directory);
}

/* The line of the first `call` after the line holding `function` in the
 * probe's source, next to this file. */
static unsigned probe_source_line(const char *function, const char *call)
{
    char path[PATH_MAX];
    char here[] = __FILE__;
    snprintf(path, sizeof(path), "%s/stacklog_probe.c", dirname(here));
    FILE *source = fopen(path, "r");
    ck_assert_msg(source != NULL, "%s: %s", path, strerror(errno));
    char text[512];
    unsigned line = 0, found = 0;
    bool in_function = false;
    while (!found && fgets(text, sizeof(text), source)) {
        line++;
        if (strstr(text, function))
            in_function = true;
        else if (in_function && strstr(text, call))
            found = line;
    }
    fclose(source);
    ck_assert_msg(found != 0, "no %s in %s of %s", call, function, path);
    return found;
}

struct site_search {
    const struct log_reader *reader;
    struct symbols *symbols;
    struct symbols_frame frame; /* the frame in the site, once found */
    bool found;
};

static int find_site_frame(const struct log_reader_event *event, void *context)
{
    struct site_search *search = context;
    uint64_t pcs[MDLOG_MAX_FRAMES];
    uint32_t modules[MDLOG_MAX_FRAMES];
    size_t count = log_reader_stack_frames(search->reader, event->stack, pcs,
                                           modules, MDLOG_MAX_FRAMES);
    for (size_t i = 0; i < count; i++) {
        struct symbols_frame frame;
        if (symbols_lookup(search->symbols, pcs[i], modules[i], &frame) &&
            frame.function && strcmp(frame.function, "site_a") == 0) {
            search->frame = frame;
            search->found = true;
            return 1;
        }
    }
    return 0;
}

/* Runs `program scenario` in full mode to its end, its log kept in the
 * test's directory. */
static void run_keeping_log(struct probe_run *run, const char *program,
                            const char *scenario)
{
    make_directory();
    char directory_setting[300];
    snprintf(directory_setting, sizeof(directory_setting),
             "MallocStackLoggingDirectory=%s", directory);
    const char *settings[] = {"MallocStackLogging=full", directory_setting,
                              "MallocStackLoggingDontDeleteStackLogFile=1", NULL};
    probe(run, program, scenario, settings, false);
    ck_assert_msg(exited_cleanly(run), "%s", run->err);
}

START_TEST(test_log_of_an_exited_probe)
{
    struct probe_run run;
    run_keeping_log(&run, PROBE, "sites");
    unsigned long pid = output_value(run.out, "pid");
    unsigned long site_a = output_value(run.out, "site_a");

    char path[512], message[MESSAGE_SIZE];
    snprintf(path, sizeof(path), "%s/" MDLOG_FILE_PREFIX "%lu.stacklog_probe"
             MDLOG_FILE_SUFFIX, directory, pid);
    struct log_reader *reader = log_reader_open(path, message, sizeof(message));
    ck_assert_msg(reader != NULL, "%s", message);
    ck_assert_int_eq(log_reader_header(reader)->state, MDLOG_STATE_EXITED);
    struct symbols *symbols = symbols_open_log(reader, message, sizeof(message));
    ck_assert_msg(symbols != NULL, "%s", message);
    ck_assert_str_eq(message, "");

    struct site_search search = {.reader = reader, .symbols = symbols};
    ck_assert_int_eq(log_reader_for_each_event(reader, find_site_frame, &search), 1);
    ck_assert(search.found);
    ck_assert_uint_eq(search.frame.function_offset, search.frame.pc - site_a);
    ck_assert_ptr_nonnull(search.frame.file);
    ck_assert_str_eq(last_component(search.frame.file), "stacklog_probe.c");
    ck_assert_uint_eq(search.frame.line,
                      probe_source_line("*site_a(size_t size)", "malloc(size)"));
    ck_assert_ptr_nonnull(strstr(search.frame.module, "stacklog_probe"));

    symbols_close(symbols);
    log_reader_close(reader);
    remove_directory(path);
}
END_TEST

/* ---- synthetic logs ---- */

static struct log_reader *open_built_log(struct log_builder *builder, char *path,
                                         size_t size)
{
    snprintf(path, size, "/tmp/md-symbols-%d.stacklog", (int)getpid());
    ck_assert(log_builder_write(builder, path));
    char message[MESSAGE_SIZE];
    struct log_reader *reader = log_reader_open(path, message, sizeof(message));
    ck_assert_msg(reader != NULL, "%s", message);
    return reader;
}

static struct symbols *open_log_ok(const struct log_reader *reader)
{
    char message[MESSAGE_SIZE];
    struct symbols *symbols = symbols_open_log(reader, message, sizeof(message));
    ck_assert_msg(symbols != NULL, "%s", message);
    ck_assert_str_eq(message, "");
    return symbols;
}

/* This executable as the writer would have recorded it. */
static uint32_t add_own_module(struct log_builder *builder, bool right_build,
                               uint64_t loaded_order)
{
    struct own_module own = own_module();
    struct mdlog_module record = {.load_bias = own.load_bias,
                                  .start = own.start,
                                  .end = own.end,
                                  .loaded_order = loaded_order,
                                  .build_id_size = own.build_id_size};
    memcpy(record.build_id, own.build_id, sizeof(record.build_id));
    if (!right_build) {
        record.build_id[0] ^= 0xff;
        record.build_id_size = 4;
    }
    snprintf(record.path, sizeof(record.path), "%s", own_path());
    return log_builder_module_record(builder, &record);
}

static void assert_offset_only(const struct symbols_frame *frame,
                               const char *module, uint64_t offset)
{
    ck_assert_ptr_nonnull(frame->module);
    ck_assert_str_eq(frame->module, module);
    ck_assert_uint_eq(frame->module_offset, offset);
    ck_assert_ptr_null(frame->function);
    ck_assert_uint_eq(frame->function_offset, 0);
    ck_assert_ptr_null(frame->file);
    ck_assert_uint_eq(frame->line, 0);
}

/* A log may name any path as a module's file: a FIFO there gives the
 * module's offsets, without waiting for a writer (the test's timeout
 * fails a wait). */
START_TEST(test_log_module_file_that_is_a_fifo)
{
    char fifo_dir[] = "/tmp/md-symbols-fifo.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(fifo_dir));
    char fifo[sizeof(fifo_dir) + 16];
    snprintf(fifo, sizeof(fifo), "%s/libfifo.so", fifo_dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    struct log_builder *builder = log_builder_create(LOG_BUILDER_SMALL_CHUNK, 4242);
    uint32_t module = log_builder_module(builder, fifo, 0x10000000, 0x10100000, 1, 0);
    char path[256];
    struct log_reader *reader = open_built_log(builder, path, sizeof(path));
    struct symbols *symbols = open_log_ok(reader);
    struct symbols_frame frame;
    ck_assert(symbols_lookup(symbols, 0x10000123, module, &frame));
    assert_offset_only(&frame, "libfifo.so", 0x123);
    symbols_close(symbols);
    log_reader_close(reader);
    log_builder_destroy(builder);
    unlink(path);
    unlink(fifo);
    rmdir(fifo_dir);
}
END_TEST

START_TEST(test_log_modules_gone_changed_and_overlapping)
{
    unsigned line = call_from_known_line();
    struct log_builder *builder = log_builder_create(LOG_BUILDER_SMALL_CHUNK, 4242);
    uint32_t gone = log_builder_module(builder, "/nonexistent/md-symbols/libgone.so.1",
                                       0x10000000, 0x10100000, 1, 0);
    /* Two records of this executable at the same addresses, as when a
     * library is unloaded and another loaded in its place. */
    uint32_t changed = add_own_module(builder, false, 2);
    uint32_t right = add_own_module(builder, true, 3);
    char path[256];
    struct log_reader *reader = open_built_log(builder, path, sizeof(path));
    struct symbols *symbols = open_log_ok(reader);
    struct symbols_frame frame;

    ck_assert(symbols_lookup(symbols, 0x10000123, gone, &frame));
    assert_offset_only(&frame, "libgone.so.1", 0x123);
    ck_assert(symbols_lookup(symbols, 0x10000456, SYMBOLS_ANY_MODULE, &frame));
    assert_offset_only(&frame, "libgone.so.1", 0x456);

    ck_assert(symbols_lookup(symbols, recorded_return, changed, &frame));
    assert_offset_only(&frame, last_component(own_path()),
                       recorded_return - own_module().load_bias);
    ck_assert(symbols_lookup(symbols, recorded_return, right, &frame));
    assert_known_call(&frame, line);
    /* The module seen last holds the address at the end of the log. */
    ck_assert(symbols_lookup(symbols, recorded_return, SYMBOLS_ANY_MODULE, &frame));
    assert_known_call(&frame, line);

    ck_assert(!symbols_lookup(symbols, 0x20000000, SYMBOLS_ANY_MODULE, &frame));
    ck_assert_ptr_null(frame.module);
    ck_assert(!symbols_lookup(symbols, 0x10000123, right + 1, &frame));
    ck_assert(!symbols_lookup(symbols, 0x10000123, MDLOG_MODULE_THREAD, &frame));
    ck_assert_ptr_null(frame.module);

    symbols_close(symbols);
    log_reader_close(reader);
    log_builder_destroy(builder);
    unlink(path);
}
END_TEST

/* True when this process maps the file `path`. */
static bool is_mapped(const char *path)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    ck_assert_ptr_nonnull(maps);
    char line[PATH_MAX + 128];
    bool mapped = false;
    while (!mapped && fgets(line, sizeof(line), maps)) {
        line[strcspn(line, "\n")] = '\0';
        const char *name = strchr(line, '/');
        mapped = name && strcmp(name, path) == 0;
    }
    fclose(maps);
    return mapped;
}

/* The probe's executable, next to this one: an ELF file this process
 * does not map. */
static void probe_path(char *path, size_t size)
{
    char here[PATH_MAX];
    snprintf(here, sizeof(here), "%s", own_path());
    const char *directory_of_here = dirname(here);
    snprintf(path, size, "%s/stacklog_probe", directory_of_here);
    if (access(path, R_OK) != 0)
        snprintf(path, size, "%s/lt-stacklog_probe", directory_of_here);
    ck_assert_msg(access(path, R_OK) == 0, "%s", path);
}

/* What the file at `path` says of itself, read with libelf. */
struct elf_facts {
    uint64_t entry;
    uint32_t build_id_size;
    uint8_t build_id[MDLOG_BUILD_ID_MAX];
};

static struct elf_facts elf_facts(const char *path)
{
    struct elf_facts facts = {0};
    elf_version(EV_CURRENT);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
    ck_assert_ptr_nonnull(elf);
    GElf_Ehdr header;
    ck_assert_ptr_nonnull(gelf_getehdr(elf, &header));
    facts.entry = header.e_entry;
    const void *build_id = NULL;
    ssize_t size = dwelf_elf_gnu_build_id(elf, &build_id);
    if (size > 0 && size <= MDLOG_BUILD_ID_MAX) {
        facts.build_id_size = (uint32_t)size;
        memcpy(facts.build_id, build_id, (size_t)size);
    }
    elf_end(elf);
    close(fd);
    return facts;
}

START_TEST(test_log_opens_files_of_modules_looked_up_only)
{
    char probe_file[PATH_MAX];
    probe_path(probe_file, sizeof(probe_file));
    struct elf_facts probe_facts = elf_facts(probe_file);
    struct log_builder *builder = log_builder_create(LOG_BUILDER_SMALL_CHUNK, 4242);
    uint32_t own = add_own_module(builder, true, 1);
    /* The probe as if loaded at 0x10000000. */
    struct mdlog_module record = {.load_bias = 0x10000000,
                                  .start = 0x10000000,
                                  .end = 0x10100000,
                                  .loaded_order = 1,
                                  .build_id_size = probe_facts.build_id_size};
    memcpy(record.build_id, probe_facts.build_id, sizeof(record.build_id));
    size_t length = strlen(probe_file);
    ck_assert_uint_lt(length, sizeof(record.path));
    memcpy(record.path, probe_file, length + 1);
    uint32_t probe_module = log_builder_module_record(builder, &record);
    char path[256];
    struct log_reader *reader = open_built_log(builder, path, sizeof(path));
    struct symbols *symbols = open_log_ok(reader);
    struct symbols_frame frame;
    ck_assert(!is_mapped(probe_file));
    ck_assert(symbols_lookup(symbols, (uintptr_t)demangle_target + 1, own, &frame));
    ck_assert_str_eq(frame.function, "mallocdbg::sample::probe(int)");
    ck_assert(!is_mapped(probe_file));

    uint64_t in_start = 0x10000000 + probe_facts.entry + 1;
    ck_assert(symbols_lookup(symbols, in_start, probe_module, &frame));
    ck_assert_str_eq(frame.module, last_component(probe_file));
    ck_assert_uint_eq(frame.module_offset, probe_facts.entry + 1);
    ck_assert_ptr_nonnull(frame.function);
    ck_assert_str_eq(frame.function, "_start");
    ck_assert_uint_eq(frame.function_offset, 1);
    ck_assert(is_mapped(probe_file));

    symbols_close(symbols);
    ck_assert(!is_mapped(probe_file));
    log_reader_close(reader);
    log_builder_destroy(builder);
    unlink(path);
}
END_TEST

/* Names as symbol tables hold them, made readable. */
START_TEST(test_readable_names)
{
    struct log_builder *builder = log_builder_create(LOG_BUILDER_SMALL_CHUNK, 4242);
    char path[256];
    struct log_reader *reader = open_built_log(builder, path, sizeof(path));
    struct symbols *symbols = open_log_ok(reader);
    const char *plain = "malloc";
    ck_assert_ptr_eq(symbols_readable_name(symbols, plain), plain);
    ck_assert_str_eq(symbols_readable_name(symbols, "fopen@@GLIBC_2.2.5"), "fopen");
    ck_assert_str_eq(symbols_readable_name(symbols, "fopen@GLIBC_2.1"), "fopen");
    const char *cxx = symbols_readable_name(symbols, "_ZN9mallocdbg6sample5probeEi");
    ck_assert_str_eq(cxx, "mallocdbg::sample::probe(int)");
    ck_assert_ptr_eq(symbols_readable_name(symbols, "_ZN9mallocdbg6sample5probeEi@V1"),
                     cxx);
    /* A C name that only looks mangled stays as it is. */
    ck_assert_str_eq(symbols_readable_name(symbols, "_Zoo_keeper"), "_Zoo_keeper");
    symbols_close(symbols);
    log_reader_close(reader);
    log_builder_destroy(builder);
    unlink(path);
}
END_TEST

START_TEST(test_open_log_without_reader)
{
    char message[MESSAGE_SIZE];
    ck_assert_ptr_null(symbols_open_log(NULL, message, sizeof(message)));
    ck_assert_str_eq(message, "no stack log to symbolize from; open the log first");
}
END_TEST

/* ---- code inlined into its caller ---- */

struct block_search {
    uint64_t address;
    uint32_t stack;
};

static int find_block(const struct log_reader_event *event, void *context)
{
    struct block_search *search = context;
    if ((event->type & MDLOG_EVENT_KIND_MASK) != MDLOG_EVENT_ALLOC ||
        event->address != search->address)
        return 0;
    search->stack = event->stack;
    return 1;
}

struct inline_run {
    struct probe_run run;
    char path[512];
    struct log_reader *reader;
    uint32_t stack; /* of the block allocated through the inlined call */
    unsigned long malloc_line, call_line;
};

/* inline_probe's log, kept after it exited. */
static void run_inline_probe(struct inline_run *probe_run)
{
    struct probe_run *run = &probe_run->run;
    run_keeping_log(run, INLINE_PROBE, "run");
    probe_run->malloc_line = output_value(run->out, "malloc_line");
    probe_run->call_line = output_value(run->out, "call_line");
    ck_assert_uint_gt(probe_run->call_line, probe_run->malloc_line);
    snprintf(probe_run->path, sizeof(probe_run->path),
             "%s/" MDLOG_FILE_PREFIX "%lu.inline_probe" MDLOG_FILE_SUFFIX,
             directory, output_value(run->out, "pid"));
    char message[MESSAGE_SIZE];
    probe_run->reader = log_reader_open(probe_run->path, message, sizeof(message));
    ck_assert_msg(probe_run->reader != NULL, "%s", message);
    struct block_search search = {.address = output_value(run->out, "block")};
    ck_assert_int_eq(log_reader_for_each_event(probe_run->reader, find_block,
                                               &search), 1);
    ck_assert_uint_ne(search.stack, 0);
    probe_run->stack = search.stack;
}

static void end_inline_probe(struct inline_run *probe_run)
{
    log_reader_close(probe_run->reader);
    remove_directory(probe_run->path);
}

/* A function at a line of inline_probe.c, whatever the path the compiler
 * recorded (../../tests/inline_probe.c in a VPATH build). */
static void assert_position(const char *function, const char *file,
                            unsigned line, const char *expected_function,
                            unsigned long expected_line)
{
    ck_assert_ptr_nonnull(function);
    ck_assert_str_eq(function, expected_function);
    ck_assert_ptr_nonnull(file);
    ck_assert_str_eq(last_component(file), "inline_probe.c");
    ck_assert_uint_eq(line, expected_line);
}

START_TEST(test_inlined_call_is_a_frame_of_its_own)
{
    struct inline_run probe_run;
    run_inline_probe(&probe_run);
    struct symbols *symbols = open_log_ok(probe_run.reader);
    uint64_t pc;
    uint32_t module;
    ck_assert_uint_eq(log_reader_stack_frames(probe_run.reader, probe_run.stack,
                                              &pc, &module, 1), 1);
    struct symbols_frame frame;
    ck_assert(symbols_lookup(symbols, pc, module, &frame));
    /* Innermost first: the inlined function at its malloc call, then the
     * function it was inlined into, at the inlined call. */
    ck_assert_uint_eq(frame.inlined_count, 1);
    assert_position(frame.inlined[0].function, frame.inlined[0].file,
                    frame.inlined[0].line, "inlined_allocation",
                    probe_run.malloc_line);
    assert_position(frame.function, frame.file, frame.line,
                    "allocate_through_inline", probe_run.call_line);
    ck_assert_str_eq(frame.module, "inline_probe");

    /* Again, from the cache: the same calls. */
    struct symbols_frame again;
    ck_assert(symbols_lookup(symbols, pc, module, &again));
    ck_assert_ptr_eq(again.inlined, frame.inlined);
    ck_assert_uint_eq(again.inlined_count, 1);
    ck_assert_uint_eq(again.line, frame.line);

    symbols_close(symbols);
    end_inline_probe(&probe_run);
}
END_TEST

/* The line of `text` that holds `words`, up to its end. */
static const char *line_with(const char *text, const char *words, char *line,
                             size_t size)
{
    const char *found = strstr(text, words);
    ck_assert_msg(found != NULL, "no \"%s\" in:\n%s", words, text);
    const char *start = found;
    while (start > text && start[-1] != '\n')
        start--;
    size_t length = strcspn(start, "\n");
    ck_assert_uint_lt(length, size);
    memcpy(line, start, length);
    line[length] = '\0';
    return start + length;
}

static void assert_line_ends_at(const char *line, unsigned long source_line)
{
    char end[64];
    snprintf(end, sizeof(end), "inline_probe.c:%lu", source_line);
    size_t length = strlen(line), end_length = strlen(end);
    ck_assert_msg(length > end_length &&
                  strcmp(line + length - end_length, end) == 0 &&
                  (line[length - end_length - 1] == '/' ||
                   line[length - end_length - 1] == ' '),
                  "\"%s\" does not end with %s", line, end);
}

/* As leaks prints a stack and names its class: the inlined call is a
 * line, and a frame number, of its own. */
START_TEST(test_inlined_call_in_printed_stacks)
{
    struct inline_run probe_run;
    run_inline_probe(&probe_run);
    struct symbols *symbols = open_log_ok(probe_run.reader);
    struct stack_names *names = stack_names_open(probe_run.reader, symbols);
    ck_assert_ptr_nonnull(names);
    char *text = NULL;
    size_t text_size = 0;
    FILE *out = open_memstream(&text, &text_size);
    ck_assert_ptr_nonnull(out);
    stack_names_print_frames(names, out, probe_run.stack, true);
    fclose(out);

    char caller[512], inlined[512];
    const char *after = line_with(text, " allocate_through_inline + ", caller,
                                  sizeof(caller));
    ck_assert_int_eq(after[0], '\n');
    line_with(after + 1, "", inlined, sizeof(inlined));
    ck_assert_msg(strncmp(caller, "1   inline_probe ", 17) == 0, "%s", text);
    assert_line_ends_at(caller, probe_run.call_line);
    ck_assert_msg(strncmp(inlined, "0   inline_probe ", 17) == 0, "%s", text);
    ck_assert_msg(strstr(inlined, " inlined_allocation [inlined]  "), "%s", text);
    assert_line_ends_at(inlined, probe_run.malloc_line);

    ck_assert_str_eq(stack_names_class(names, probe_run.stack),
                     "malloc in inlined_allocation");
    ck_assert(stack_names_has_function(names, probe_run.stack,
                                       "inlined_allocation"));
    free(text);
    stack_names_close(names);
    symbols_close(symbols);
    end_inline_probe(&probe_run);
}
END_TEST

/* ---- class names past the runtimes ---- */

/* Modules known by their file names only (the files are gone): a class
 * is named after the first frame outside the C and C++ runtimes, or the
 * first frame when there is none. */
START_TEST(test_class_named_past_runtime_modules)
{
    struct log_builder *builder = log_builder_create(LOG_BUILDER_SMALL_CHUNK, 4242);
    uint32_t libc = log_builder_module(builder, "/nonexistent/md-symbols/libc.so.6",
                                       0x10000000, 0x10100000, 1, 0);
    uint32_t cxx = log_builder_module(builder,
                                      "/nonexistent/md-symbols/libstdc++.so.6",
                                      0x20000000, 0x20100000, 1, 0);
    /* Starts like the C library's name, but is not it. */
    uint32_t crypto = log_builder_module(builder,
                                         "/nonexistent/md-symbols/libcrypto.so.3",
                                         0x30000000, 0x30100000, 1, 0);
    uint32_t thread = log_builder_thread_node(builder, 7);
    /* Outermost first: libcrypto calls operator new, which calls the C
     * library; and a stack all in the runtimes. */
    uint32_t in_crypto = log_builder_frame(builder, thread, 0x30000123, crypto);
    uint32_t in_cxx = log_builder_frame(builder, in_crypto, 0x20000456, cxx);
    uint32_t past_two = log_builder_frame(builder, in_cxx, 0x10000789, libc);
    uint32_t runtime_outer = log_builder_frame(builder, thread, 0x20000abc, cxx);
    uint32_t runtime_only = log_builder_frame(builder, runtime_outer, 0x10000def, libc);
    char path[256];
    struct log_reader *reader = open_built_log(builder, path, sizeof(path));
    struct symbols *symbols = open_log_ok(reader);
    struct stack_names *names = stack_names_open(reader, symbols);
    ck_assert_ptr_nonnull(names);

    ck_assert_str_eq(stack_names_class(names, past_two),
                     "malloc in libcrypto.so.3 + 0x123");
    ck_assert_str_eq(stack_names_class(names, in_crypto),
                     "malloc in libcrypto.so.3 + 0x123");
    ck_assert_str_eq(stack_names_class(names, runtime_only),
                     "malloc in libc.so.6 + 0xdef");
    ck_assert_str_eq(stack_names_class(names, 0), "non-object");

    stack_names_close(names);
    symbols_close(symbols);
    log_reader_close(reader);
    log_builder_destroy(builder);
    unlink(path);
}
END_TEST

static Suite *symbols_suite(void)
{
    Suite *s = suite_create("symbols");
    TCase *process = tcase_create("process");
    tcase_add_test(process, test_own_call_gives_function_file_and_line);
    tcase_add_test(process, test_cxx_name_is_demangled);
    tcase_add_test(process, test_address_in_no_module);
    tcase_add_test(process, test_open_no_process);
    tcase_add_test(process, test_open_another_users_process);
    suite_add_tcase(s, process);

    TCase *log = tcase_create("log");
    tcase_set_timeout(log, 30);
    tcase_add_test(log, test_log_of_an_exited_probe);
    tcase_add_test(log, test_inlined_call_is_a_frame_of_its_own);
    tcase_add_test(log, test_inlined_call_in_printed_stacks);
    tcase_add_test(log, test_log_modules_gone_changed_and_overlapping);
    tcase_add_test(log, test_log_module_file_that_is_a_fifo);
    tcase_add_test(log, test_log_opens_files_of_modules_looked_up_only);
    tcase_add_test(log, test_readable_names);
    tcase_add_test(log, test_class_named_past_runtime_modules);
    tcase_add_test(log, test_open_log_without_reader);
    suite_add_tcase(s, log);
    return s;
}

int main(void)
{
    return run_suite(symbols_suite());
}
