//===- ParserFuzzer.cpp - libFuzzer target for the kvq IR parser ----------===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// Feeds arbitrary bytes to the MLIR parser as a module, with the kvq dialect
// and the dialects kvq IR mixes with (builtin, arith, func, memref, tensor,
// gpu: a kvq.fused_cache_store region computes with arith and reads with
// memref.load or tensor.extract) registered.
// (Not nvvm / rocdl: their headers would triple this file's compile time for
// upstream attributes only; FoldScalesFuzzer covers the targets.) Every
// input that parses and verifies must round-trip:
//
// - printed in the custom form, it re-parses, verifies and prints the same;
// - printed in the generic form, it re-parses, verifies and prints the same
//   custom form (this catches an attribute whose printer elides a prefix
//   its parser needs).
//
// A violation is a kvq printer/parser/verifier bug: the process traps after
// writing both texts and the diagnostics to stderr. Diagnostics are
// otherwise captured, never printed. Each input gets a fresh context, so a
// crash reproduces from its input alone.
//
//===----------------------------------------------------------------------===//

#include "kvq/Dialect/KVQ/IR/KVQDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

using namespace mlir;

namespace {
/// Parses \p text as a module without printing diagnostics; returns null on
/// a parse or verifier error (the messages go to \p diagnostics).
OwningOpRef<ModuleOp> parseAndVerify(MLIRContext &context, llvm::StringRef text,
                                     std::string &diagnostics) {
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    llvm::raw_string_ostream(diagnostics) << diag << "\n";
    return success();
  });
  ParserConfig config(&context, /*verifyAfterParse=*/false);
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(text, config);
  if (!module || failed(verify(*module)))
    return nullptr;
  return module;
}

std::string print(ModuleOp module, bool generic) {
  std::string text;
  llvm::raw_string_ostream os(text);
  OpPrintingFlags flags;
  if (generic)
    flags.printGenericOpForm();
  module.print(os, flags);
  return text;
}

[[noreturn]] void roundTripFailure(llvm::StringRef what,
                                   llvm::StringRef original,
                                   llvm::StringRef printed,
                                   llvm::StringRef reprinted,
                                   llvm::StringRef diagnostics) {
  llvm::errs() << "kvq parser fuzzer: " << what << "\n--- input\n"
               << original << "\n--- printed\n"
               << printed << "\n--- re-printed\n"
               << reprinted << "\n--- diagnostics\n"
               << diagnostics << "\n";
  llvm::errs().flush();
  __builtin_trap();
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  DialectRegistry registry;
  registry
      .insert<kvq::KVQDialect, arith::ArithDialect, func::FuncDialect,
              memref::MemRefDialect, gpu::GPUDialect, tensor::TensorDialect>();
  MLIRContext context(registry, MLIRContext::Threading::DISABLED);

  // The MLIR lexer relies on the NUL after the buffer that files and
  // mlir-opt always have (it reads one character past the end to find it);
  // libFuzzer's data has none.
  std::unique_ptr<char[]> text(new char[size + 1]);
  std::memcpy(text.get(), data, size);
  text[size] = '\0';
  llvm::StringRef input(text.get(), size);
  std::string diagnostics;
  OwningOpRef<ModuleOp> module = parseAndVerify(context, input, diagnostics);
  if (!module)
    return 0; // Rejected with a diagnostic: fine.

  std::string custom = print(*module, /*generic=*/false);
  std::string generic = print(*module, /*generic=*/true);
  module = nullptr;

  for (auto [form, printed] :
       {std::pair<llvm::StringRef, llvm::StringRef>{"custom", custom},
        {"generic", generic}}) {
    std::string reparseDiagnostics;
    OwningOpRef<ModuleOp> reparsed =
        parseAndVerify(context, printed, reparseDiagnostics);
    if (!reparsed)
      roundTripFailure(("the " + form +
                        " form of a verified module does not parse or verify")
                           .str(),
                       input, printed, "", reparseDiagnostics);
    std::string reprinted = print(*reparsed, /*generic=*/false);
    if (reprinted != custom)
      roundTripFailure(
          ("the " + form + " form re-parses to a different module").str(),
          input, custom, reprinted, reparseDiagnostics);
  }
  return 0;
}
