/* SPDX-License-Identifier: MIT */
/* The zero-copy engine's payload ring; see zc_arena.h. Pure logic. */
#include <errno.h>
#include <string.h>

#include "zc_arena.h"

void wvv_arena_init(struct wvv_arena *a, size_t size)
{
	memset(a, 0, sizeof(*a));
	a->size = size;
}

size_t wvv_arena_max(const struct wvv_arena *a)
{
	return a->size / 4;
}

static struct wvv_arena_rec *oldest(struct wvv_arena *a)
{
	return &a->rec[a->first];
}

static struct wvv_arena_rec *newest(struct wvv_arena *a)
{
	return &a->rec[(a->first + a->count - 1) % WVV_ARENA_RECORDS];
}

int wvv_arena_alloc(struct wvv_arena *a, size_t len, size_t *off)
{
	size_t need = (len + WVV_ARENA_ALIGN - 1) & ~(size_t)(WVV_ARENA_ALIGN - 1);
	size_t at, tail;
	unsigned id;

	if (len == 0 || len > wvv_arena_max(a))
		return -EMSGSIZE;
	if (a->count == WVV_ARENA_RECORDS)
		return -ENOBUFS;
	if (a->count == 0) {
		at = 0;
	} else {
		tail = oldest(a)->off;
		if (newest(a)->off >= tail) {
			/* Not wrapped: room after head, else at the start. */
			if (a->size - a->head >= need)
				at = a->head;
			else if (tail >= need)
				at = 0;
			else
				return -ENOBUFS;
		} else {
			/* Wrapped: room between head and the oldest. */
			if (tail - a->head >= need)
				at = a->head;
			else
				return -ENOBUFS;
		}
	}
	id = (a->first + a->count) % WVV_ARENA_RECORDS;
	a->rec[id] = (struct wvv_arena_rec){ .off = at, .len = need, .pending = 0, .open = true };
	a->count++;
	a->head = at + need;
	*off = at;
	return (int)id;
}

/* Forget the oldest records that nothing uses any more. */
static void retire(struct wvv_arena *a)
{
	while (a->count && !oldest(a)->open && oldest(a)->pending == 0) {
		a->first = (a->first + 1) % WVV_ARENA_RECORDS;
		a->count--;
	}
	if (a->count == 0)
		a->head = 0;
}

void wvv_arena_hold(struct wvv_arena *a, int id)
{
	a->rec[id].pending++;
}

void wvv_arena_release(struct wvv_arena *a, int id)
{
	/* May run before the matching hold when CQEs are reordered: the
	 * record is open until its call has seen every send's CQE. */
	a->rec[id].pending--;
	retire(a);
}

void wvv_arena_close(struct wvv_arena *a, int id)
{
	a->rec[id].open = false;
	retire(a);
}

size_t wvv_arena_used(const struct wvv_arena *a)
{
	size_t used = 0;
	unsigned i;

	for (i = 0; i < a->count; i++)
		used += a->rec[(a->first + i) % WVV_ARENA_RECORDS].len;
	return used;
}
