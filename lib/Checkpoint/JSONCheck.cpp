//===- JSONCheck.cpp - strict JSON parsing for checkpoints ----------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Checkpoint/JSONCheck.h"

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FormatVariadic.h"

#include <optional>
#include <string>

using namespace llvm;

namespace {
/// One open '{' or '[' of the pre-pass.
struct Frame {
  bool isObject;
  bool expectKey; // the next string literal in this object is a key
  StringSet<> keys;
};

/// A duplicate key found by the pre-pass.
struct Duplicate {
  std::string key;
  size_t offset;
};
} // namespace

/// The decoded value of the string literal \p literal (quotes included), or
/// std::nullopt if it is not a valid literal (the parser reports that).
static std::optional<std::string> decodeKey(StringRef literal) {
  StringRef body = literal.drop_front().drop_back();
  if (!body.contains('\\'))
    return body.str();
  Expected<json::Value> value = json::parse(literal);
  if (!value) {
    consumeError(value.takeError());
    return std::nullopt;
  }
  if (std::optional<StringRef> str = value->getAsString())
    return str->str();
  return std::nullopt;
}

Expected<json::Value> kvq::checkpoint::parseStrictJSON(StringRef text,
                                                       unsigned maxDepth) {
  size_t badByte = 0;
  if (!json::isUTF8(text, &badByte))
    return createStringError(
        formatv("not valid UTF-8 (byte offset {0})", badByte).str());

  SmallVector<Frame, 8> stack;
  std::optional<Duplicate> duplicate;
  size_t size = text.size();
  for (size_t i = 0; i < size;) {
    char c = text[i];
    if (c == '{' || c == '[') {
      if (stack.size() >= maxDepth)
        return createStringError(
            formatv("JSON nested deeper than {0} levels (byte offset {1})",
                    maxDepth, i)
                .str());
      stack.push_back(Frame{c == '{', c == '{', {}});
      ++i;
      continue;
    }
    if (c == '}' || c == ']') {
      if (!stack.empty())
        stack.pop_back();
      ++i;
      continue;
    }
    if (c == ',') {
      if (!stack.empty() && stack.back().isObject)
        stack.back().expectKey = true;
      ++i;
      continue;
    }
    if (c != '"') {
      ++i;
      continue;
    }
    // A string literal: find its closing quote.
    size_t j = i + 1;
    while (j < size && text[j] != '"')
      j += text[j] == '\\' ? 2 : 1;
    if (j >= size)
      break; // unterminated: the parser reports it
    if (!stack.empty() && stack.back().isObject && stack.back().expectKey) {
      stack.back().expectKey = false;
      if (std::optional<std::string> key = decodeKey(text.slice(i, j + 1)))
        if (!stack.back().keys.insert(*key).second && !duplicate)
          duplicate = Duplicate{*key, i};
    }
    i = j + 1;
  }

  Expected<json::Value> value = json::parse(text);
  if (!value)
    return createStringError("invalid JSON: " + toString(value.takeError()));
  if (duplicate)
    return createStringError(formatv("duplicate key '{0}' (byte offset {1})",
                                     duplicate->key, duplicate->offset)
                                 .str());
  return value;
}
