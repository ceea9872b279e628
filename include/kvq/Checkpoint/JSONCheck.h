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
//===----------------------------------------------------------------------===//

#ifndef KVQ_CHECKPOINT_JSONCHECK_H
#define KVQ_CHECKPOINT_JSONCHECK_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

namespace kvq::checkpoint {

/// Deep enough for any checkpoint header or index (they nest 3 levels).
constexpr unsigned kMaxJSONDepth = 64;

/// Parses \p text as JSON, rejecting invalid UTF-8, nesting deeper than
/// \p maxDepth and duplicate keys in any object. Error messages do not name a
/// file; callers prefix them with one.
llvm::Expected<llvm::json::Value>
parseStrictJSON(llvm::StringRef text, unsigned maxDepth = kMaxJSONDepth);

} // namespace kvq::checkpoint

#endif // KVQ_CHECKPOINT_JSONCHECK_H
