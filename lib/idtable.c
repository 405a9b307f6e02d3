/* SPDX-License-Identifier: MIT */
/* The process-wide id table (see idtable.h). */
#include "idtable.h"

#include "tsan.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>

static struct cds_lfht *table;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
/* Ids start at 1 and only grow: 2^64 ids never run out in a process. */
static atomic_uint_fast64_t next_id = 1;
/* TSan cannot see RCU's grace periods: readers release this word when
 * they leave a critical section, and whatever runs after a grace period
 * acquires it. */
static char rcu_tsan_sync;

static void table_init(void)
{
    table = cds_lfht_new_flavor(64, 64, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
                                &urcu_bp_flavor, NULL);
}

/* splitmix64's finaliser: sequential ids spread over every bucket */
static unsigned long hash_id(uint64_t id)
{
    id ^= id >> 30;
    id *= 0xbf58476d1ce4e5b9ull;
    id ^= id >> 27;
    id *= 0x94d049bb133111ebull;
    id ^= id >> 31;
    return (unsigned long)id;
}

static int match_id(struct cds_lfht_node *node, const void *key)
{
    struct jk_obj *o = caa_container_of(node, struct jk_obj, node);
    TSAN_ACQUIRE(o);
    return o->id == *(const uint64_t *)key;
}

void jk_obj_init(struct jk_obj *o, int type, void (*last_ref)(struct jk_obj *))
{
    cds_lfht_node_init(&o->node);
    o->id = 0;
    o->type = type;
    atomic_init(&o->refs, 1);
    atomic_init(&o->published, false);
    o->last_ref = last_ref;
    o->free_fn = NULL;
}

int jk_obj_publish(struct jk_obj *o)
{
    pthread_once(&table_once, table_init);
    if (!table)
        return -ENOMEM;
    o->id = atomic_fetch_add(&next_id, 1);
    atomic_store(&o->published, true);
    TSAN_RELEASE(o);
    jk_rcu_read_lock();
    cds_lfht_add(table, hash_id(o->id), &o->node);
    jk_rcu_read_unlock();
    return 0;
}

bool jk_obj_unpublish(struct jk_obj *o)
{
    if (!atomic_exchange(&o->published, false))
        return false;
    jk_rcu_read_lock();
    cds_lfht_del(table, &o->node);
    jk_rcu_read_unlock();
    jk_obj_put(o);
    return true;
}

/* kref_get_unless_zero: an object whose last reference went is dead even
 * while a lookup can still see it (until the grace period ends). */
static bool ref_unless_zero(struct jk_obj *o)
{
    long r = atomic_load(&o->refs);
    while (r > 0)
        if (atomic_compare_exchange_weak(&o->refs, &r, r + 1))
            return true;
    return false;
}

struct jk_obj *jk_obj_get(uint64_t id, int type)
{
    if (id == 0 || !table)
        return NULL;
    struct cds_lfht_iter it;
    struct jk_obj *found = NULL;
    jk_rcu_read_lock();
    cds_lfht_lookup(table, hash_id(id), match_id, &id, &it);
    struct cds_lfht_node *n = cds_lfht_iter_get_node(&it);
    if (n) {
        struct jk_obj *o = caa_container_of(n, struct jk_obj, node);
        if (o->type == type && ref_unless_zero(o))
            found = o;
    }
    jk_rcu_read_unlock();
    return found;
}

void jk_obj_ref(struct jk_obj *o)
{
    atomic_fetch_add(&o->refs, 1);
}

void jk_obj_put(struct jk_obj *o)
{
    if (atomic_fetch_sub(&o->refs, 1) == 1)
        o->last_ref(o);
}

static void free_cb(struct rcu_head *head)
{
    struct jk_obj *o = caa_container_of(head, struct jk_obj, rcu);
    TSAN_ACQUIRE(&rcu_tsan_sync);
    TSAN_ACQUIRE(o);
    o->free_fn(o);
}

void jk_obj_free_later(struct jk_obj *o, void (*fn)(struct jk_obj *))
{
    o->free_fn = fn;
    TSAN_RELEASE(o);
    urcu_bp_call_rcu(&o->rcu, free_cb);
}

void jk_rcu_read_lock(void)
{
    urcu_bp_read_lock();
}

void jk_rcu_read_unlock(void)
{
    TSAN_RELEASE(&rcu_tsan_sync);
    urcu_bp_read_unlock();
}

void jk_rcu_synchronize(void)
{
    urcu_bp_synchronize_rcu();
    TSAN_ACQUIRE(&rcu_tsan_sync);
}
