//===- JSONCheck.h - strict JSON parsing for checkpoints --------*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// llvm::json::parse is not safe on hostile input as is: it recurses once per
// nesting level (a header of a few MB of '[' overflows the stack) and keeps
// one of two duplicate object keys without a word. parseStrictJSON runs a
// lexical pre-pass over the text first. The pass walks the bytes once, with
// an explicit stack, skipping string literals; it rejects nesting deeper than
// a limit before the recursive parser sees the text, and records the keys of
// every object (decoding escapes the way the parser does, by parsing the key
// literal on its own) to find duplicates. The pass does not validate the
// grammar: the parser does that afterwards, and a duplicate key is reported
// only for text the parser accepts.
//
// llvm::json is also costly for a safetensors header: every object gets a
// hash table of at least 64 buckets, so a 4 MB header of 40,000 entries takes
// ~400 MB and a second to parse whole. scanObjectMembers splits a top-level
// object into its members lexically, so that the caller parses (with
// parseStrictJSON) and keeps one small member at a time.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_CHECKPOINT_JSONCHECK_H
#define KVQ_CHECKPOINT_JSONCHECK_H

#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

namespace mlir::kvq::checkpoint {

/// Deep enough for any checkpoint header or index (they nest 3 levels).
constexpr unsigned kMaxJSONDepth = 64;

/// Parses \p text as JSON, rejecting invalid UTF-8, nesting deeper than
/// \p maxDepth and duplicate keys in any object. Error messages do not name a
/// file; callers prefix them with one.
llvm::Expected<llvm::json::Value>
parseStrictJSON(llvm::StringRef text, unsigned maxDepth = kMaxJSONDepth);

/// Splits the JSON object \p text into members without building it: calls
/// \p member with each key (escapes decoded), the text of its value and the
/// byte offset of that text, in order, and stops at the first error it
/// returns. The structure around the values is checked exactly (`{`, keys,
/// `:`, `,`, `}`, nothing but whitespace after); each value is only delimited
/// (its nesting, counting the enclosing object, at most \p maxDepth), for the
/// callback to parse. \p text must be valid UTF-8. Duplicate keys are not
/// detected: the callback sees every member.
llvm::Error scanObjectMembers(
    llvm::StringRef text,
    llvm::function_ref<llvm::Error(llvm::StringRef key, llvm::StringRef value,
                                   size_t valueOffset)>
        member,
    unsigned maxDepth = kMaxJSONDepth);

} // namespace mlir::kvq::checkpoint

#endif // KVQ_CHECKPOINT_JSONCHECK_H
