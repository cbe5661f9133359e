/*
 * batch.c: the cache of a batched join scan (see paths.c): rows by prompt value.
 *
 * The initplan gives every value the nested loop will ask for, in outer-scan order. A
 * re-scan whose value is not cached yet asks Python for the next chunk of unasked values
 * starting at that value, so a LIMIT above the join does not pay for the whole table.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "utils/hsearch.h"

#include "pg_llm.h"

/* Entries whose values share a hash. */
typedef struct HashBucket
{
	uint32		hash;			/* key */
	List	   *entries;
} HashBucket;

static uint32
value_hash(const char *value)
{
	return hash_bytes((const unsigned char *) value, strlen(value));
}

LlmBatch *
llm_batch_create(List *values)
{
	LlmBatch   *batch = palloc0(sizeof(LlmBatch));
	HASHCTL		ctl;
	ListCell   *cell;

	MemSet(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(uint32);
	ctl.entrysize = sizeof(HashBucket);
	ctl.hcxt = CurrentMemoryContext;
	batch->by_hash = hash_create("pg_llm batch", Max(list_length(values), 16), &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	batch->order = palloc0(sizeof(LlmBatchEntry *) * Max(list_length(values), 1));
	foreach(cell, values)
	{
		LlmBatchEntry *entry = llm_batch_lookup(batch, lfirst(cell), true);

		if (entry->position < 0)
		{
			entry->position = batch->count;
			batch->order[batch->count++] = entry;
		}
	}
	return batch;
}

/* The entry for value; with create, a new unasked entry outside the initplan's order. */
LlmBatchEntry *
llm_batch_lookup(LlmBatch *batch, const char *value, bool create)
{
	uint32		hash = value_hash(value);
	bool		found;
	HashBucket *bucket = hash_search(batch->by_hash, &hash, create ? HASH_ENTER : HASH_FIND,
									 &found);
	ListCell   *cell;
	LlmBatchEntry *entry;

	if (bucket == NULL)
		return NULL;
	if (!found)
		bucket->entries = NIL;
	foreach(cell, bucket->entries)
	{
		entry = lfirst(cell);
		if (strcmp(entry->value, value) == 0)
			return entry;
	}
	if (!create)
		return NULL;
	entry = palloc0(sizeof(LlmBatchEntry));
	entry->value = pstrdup(value);
	entry->position = -1;
	bucket->entries = lappend(bucket->entries, entry);
	return entry;
}

/*
 * The entries to ask for now that `miss` is needed: it and the following unasked values
 * in order (wrapping around), at most size. Marks them asked.
 */
List *
llm_batch_next_chunk(LlmBatch *batch, LlmBatchEntry *miss, int size)
{
	List	   *chunk = list_make1(miss);
	int			i;

	miss->asked = true;
	if (miss->position < 0)
		return chunk;
	for (i = 1; i < batch->count && list_length(chunk) < size; i++)
	{
		LlmBatchEntry *entry = batch->order[(miss->position + i) % batch->count];

		if (!entry->asked)
		{
			entry->asked = true;
			chunk = lappend(chunk, entry);
		}
	}
	return chunk;
}
