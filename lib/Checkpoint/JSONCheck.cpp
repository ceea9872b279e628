//===- JSONCheck.cpp - strict JSON parsing for checkpoints ----------------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#include "kvq/Checkpoint/JSONCheck.h"

#include "llvm/ADT/STLExtras.h"
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

Expected<json::Value>
mlir::kvq::checkpoint::parseStrictJSON(StringRef text, unsigned maxDepth) {
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

//===----------------------------------------------------------------------===//
// scanObjectMembers
//===----------------------------------------------------------------------===//

namespace {
/// A cursor over the text of a top-level object.
class ObjectScanner {
public:
  ObjectScanner(StringRef text, unsigned maxDepth)
      : text(text), maxDepth(maxDepth) {}

  Error scan(function_ref<Error(StringRef, StringRef, size_t)> member);

private:
  Error error(const Twine &what) const {
    return createStringError(formatv("invalid JSON at byte {0}: ", pos).str() +
                             what);
  }
  void skipSpace() {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t' ||
                                 text[pos] == '\n' || text[pos] == '\r'))
      ++pos;
  }
  bool atEnd() const { return pos >= text.size(); }
  /// The end of the string literal starting at \p begin (after its closing
  /// quote), or npos if unterminated.
  size_t stringEnd(size_t begin) const {
    size_t i = begin + 1;
    while (i < text.size() && text[i] != '"')
      i += text[i] == '\\' ? 2 : 1;
    return i < text.size() ? i + 1 : StringRef::npos;
  }
  Expected<std::string> scanKey();
  Error scanValue();

  StringRef text;
  unsigned maxDepth;
  size_t pos = 0;
};
} // namespace

Expected<std::string> ObjectScanner::scanKey() {
  if (atEnd() || text[pos] != '"')
    return error("expected a string key");
  size_t end = stringEnd(pos);
  if (end == StringRef::npos)
    return error("unterminated string");
  StringRef literal = text.slice(pos, end);
  StringRef body = literal.drop_front().drop_back();
  // Plain keys are taken as they are; keys with escapes or control
  // characters (invalid unescaped) go through the parser.
  bool plain = llvm::none_of(
      body, [](char c) { return c == '\\' || (unsigned char)c < 0x20; });
  if (plain) {
    pos = end;
    return body.str();
  }
  Expected<json::Value> value = json::parse(literal);
  if (!value)
    return error("bad string key: " + toString(value.takeError()));
  pos = end;
  return value->getAsString()->str();
}

Error ObjectScanner::scanValue() {
  if (atEnd())
    return error("expected a value");
  char c = text[pos];
  if (c == '"') {
    size_t end = stringEnd(pos);
    if (end == StringRef::npos)
      return error("unterminated string");
    pos = end;
    return Error::success();
  }
  if (c == '{' || c == '[') {
    // Depth 1 is the enclosing object.
    unsigned depth = 1;
    size_t start = pos;
    while (pos < text.size()) {
      char d = text[pos];
      if (d == '"') {
        size_t end = stringEnd(pos);
        if (end == StringRef::npos)
          return error("unterminated string");
        pos = end;
        continue;
      }
      if (d == '{' || d == '[') {
        if (++depth > maxDepth)
          return error(
              formatv("JSON nested deeper than {0} levels", maxDepth).str());
      } else if (d == '}' || d == ']') {
        if (--depth == 1) {
          ++pos;
          return Error::success();
        }
      }
      ++pos;
    }
    pos = start;
    return error("unterminated value");
  }
  // A number or literal: up to the next delimiter; the parser checks it.
  size_t start = pos;
  while (pos < text.size() && !StringRef(",}] \t\n\r").contains(text[pos]))
    ++pos;
  if (pos == start)
    return error("expected a value");
  return Error::success();
}

Error ObjectScanner::scan(
    function_ref<Error(StringRef, StringRef, size_t)> member) {
  skipSpace();
  if (atEnd() || text[pos] != '{')
    return createStringError("not a JSON object");
  ++pos;
  skipSpace();
  if (!atEnd() && text[pos] == '}') {
    ++pos;
  } else {
    while (true) {
      skipSpace();
      Expected<std::string> key = scanKey();
      if (!key)
        return key.takeError();
      skipSpace();
      if (atEnd() || text[pos] != ':')
        return error("expected ':' after a key");
      ++pos;
      skipSpace();
      size_t valueStart = pos;
      if (Error err = scanValue())
        return err;
      if (Error err = member(*key, text.slice(valueStart, pos), valueStart))
        return err;
      skipSpace();
      if (atEnd())
        return error("expected ',' or '}'");
      if (text[pos] == '}') {
        ++pos;
        break;
      }
      if (text[pos] != ',')
        return error("expected ',' or '}'");
      ++pos;
    }
  }
  skipSpace();
  if (!atEnd())
    return error("text after the end of the object");
  return Error::success();
}

Error mlir::kvq::checkpoint::scanObjectMembers(
    StringRef text, function_ref<Error(StringRef, StringRef, size_t)> member,
    unsigned maxDepth) {
  return ObjectScanner(text, maxDepth).scan(member);
}
