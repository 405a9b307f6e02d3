/* SPDX-License-Identifier: MIT */
/*
 * Ids for the threaded API's objects (handles, streams, listeners), in the
 * manner of nng's socket ids and of file descriptors that are never reused:
 * a 64-bit id names one object for the life of the process, and every
 * public call resolves it through one process-wide lock-free RCU hash table
 * (liburcu's cds_lfht, bulletproof flavour urcu-bp: callers' threads need
 * no registration). Resolving takes a reference inside the RCU read-side
 * critical section, so an object is freed only after
 *   1. it was unpublished (its close: later lookups fail, -EBADF),
 *   2. the last reference (its table reference and every call inside it)
 *      was dropped, and
 *   3. a grace period passed (a lookup that found it just before it was
 *      unpublished has finished with it).
 * A stale, doubled or forged id therefore never reaches freed memory.
 */
#ifndef JK_IDTABLE_H
#define JK_IDTABLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <urcu/rculfhash.h>
#include <urcu/urcu-bp.h>

enum jk_obj_type {
    JK_OBJ_HANDLE = 1,
    JK_OBJ_STREAM = 2,
    JK_OBJ_LISTENER = 3,
};

struct jk_obj {
    struct cds_lfht_node node;
    struct rcu_head rcu;
    uint64_t id;
    int type;
    atomic_long refs;
    atomic_bool published;
    /* the last reference went: the owner decides what happens next */
    void (*last_ref)(struct jk_obj *o);
    void (*free_fn)(struct jk_obj *o); /* jk_obj_free_later's callback */
};

void jk_obj_init(struct jk_obj *o, int type, void (*last_ref)(struct jk_obj *));
/* Give o a new id and make it findable; it holds one reference (the
 * table's) from now on. 0 or -ENOMEM (the table could not be created). */
int jk_obj_publish(struct jk_obj *o);
/* Make o unfindable and drop the table's reference. True for the one call
 * that did it (later calls, and calls on an unpublished o, return false). */
bool jk_obj_unpublish(struct jk_obj *o);
/* Resolve an id of the given type and take a reference: NULL when no such
 * object is published (any more). */
struct jk_obj *jk_obj_get(uint64_t id, int type);
/* Another reference to an object the caller already holds one of. */
void jk_obj_ref(struct jk_obj *o);
void jk_obj_put(struct jk_obj *o);
/* Call fn(o) after a grace period (from liburcu's call_rcu thread). */
void jk_obj_free_later(struct jk_obj *o, void (*fn)(struct jk_obj *));

/* Read-side critical sections around memory another thread frees only
 * after jk_rcu_synchronize (the handle's rings at stop). Never block
 * inside one. */
void jk_rcu_read_lock(void);
void jk_rcu_read_unlock(void);
void jk_rcu_synchronize(void);

#endif
