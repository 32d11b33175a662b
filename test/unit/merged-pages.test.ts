import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { feedPages } from "../../src/lib/storage/erp-record-rows";
import { mergeSortedPages } from "../../src/lib/storage/merged-pages";

/** A source of sorted pages that counts the pages asked for. */
function pagedSource(values: number[], pageSize: number) {
  const source = { requested: 0, returned: false, pages: [] as number[][] };
  for (let start = 0; start < values.length; start += pageSize) source.pages.push(values.slice(start, start + pageSize));
  const iterator: AsyncIterator<number[]> = {
    next: async () => {
      source.requested++;
      const page = source.pages[source.requested - 1];
      return page ? { done: false, value: page } : { done: true, value: undefined };
    },
    return: async () => {
      source.returned = true;
      return { done: true, value: undefined };
    },
  };
  return { source, iterator };
}

describe("merging sorted pages (the ERP change feed of a run)", () => {
  it("yields every item of every source, in order", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 40 }), { maxLength: 6 }),
        fc.integer({ min: 1, max: 7 }),
        async (lists, pageSize) => {
          const sorted = lists.map((list) => [...list].sort((a, b) => a - b));
          const merged: number[] = [];
          for await (const value of mergeSortedPages(
            sorted.map((list) => pagedSource(list, pageSize).iterator),
            (a, b) => a < b,
          ))
            merged.push(value);
          expect(merged).toEqual(sorted.flat().sort((a, b) => a - b));
        },
      ),
    );
  });

  it("reads a source's pages as they are needed, at most one ahead, and closes the sources when the reader stops", async () => {
    const sources = [0, 1].map((offset) =>
      pagedSource(
        Array.from({ length: 1000 }, (_, index) => index * 2 + offset),
        10,
      ),
    );
    const merged = mergeSortedPages(
      sources.map(({ iterator }) => iterator),
      (a, b) => a < b,
    );
    for (let taken = 0; taken < 45; taken++) await merged.next();
    // 45 items hold 23 of one source and 22 of the other: 3 pages each in use, and one more read ahead.
    for (const { source } of sources) expect(source.requested).toBeLessThanOrEqual(4);
    await merged.return(undefined);
    for (const { source } of sources) expect(source.returned).toBe(true);
  });

  it("lets go of each item once the merge has yielded it, so a page read through is freed as it goes", async () => {
    const { source, iterator } = pagedSource([1, 2, 3, 4, 5], 5);
    const merged = mergeSortedPages([iterator], (a, b) => a < b);
    expect((await merged.next()).value).toBe(1);
    expect((await merged.next()).value).toBe(2);
    expect(source.pages[0]).toEqual([undefined, undefined, 3, 4, 5]);
    await merged.return(undefined);
  });
});

describe("the ERP feed's pages", () => {
  it("keep a change row without its keys and ETag, and leave the page the SDK keeps empty", async () => {
    const sdkPage = [
      {
        partitionKey: "c~customers~00",
        rowKey: "!c!s1!A",
        etag: 'W/"1"',
        timestamp: "t1",
        fieldsJson: '{"id":"A"}',
        modifiedAt: "s1",
        modifiedBy: "erp" as const,
        deleted: false,
      },
    ];
    const pages = feedPages(
      (async function* () {
        yield sdkPage;
      })(),
    );
    const first = await pages.next();
    expect(first.value).toEqual([{ fieldsJson: '{"id":"A"}', modifiedAt: "s1", modifiedBy: "erp", deleted: false, committed: "t1" }]);
    expect(sdkPage, "the SDK's generator holds this array until it reads the next page").toEqual([]);
  });
});
