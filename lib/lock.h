/*
 * The library's mutex.  A plain pthread mutex: it allocates nothing, and
 * after fork the child re-initialises it (reinit_lock) instead of
 * unlocking what another thread held.
 */
#ifndef MALLOCDEBUG_LOCK_H
#define MALLOCDEBUG_LOCK_H

#include <pthread.h>
#include <stdbool.h>

typedef pthread_mutex_t md_lock_t;

#define MD_LOCK_INITIALIZER PTHREAD_MUTEX_INITIALIZER

static inline void md_lock_init(md_lock_t *lock)
{
    pthread_mutex_init(lock, NULL);
}
static inline void md_lock(md_lock_t *lock) { pthread_mutex_lock(lock); }
static inline void md_unlock(md_lock_t *lock) { pthread_mutex_unlock(lock); }
static inline bool md_trylock(md_lock_t *lock)
{
    return pthread_mutex_trylock(lock) == 0;
}

#endif
