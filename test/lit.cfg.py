# -*- Python -*-
import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "KVQ"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
# Install/consumer is a CMake project that Install/install-consumer.test
# builds, not a test directory.
config.excludes = ["Inputs", "consumer", "CMakeLists.txt", "lit.cfg.py",
                   "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.kvq_obj_root, "test")

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%shlibext", ".so"))
config.substitutions.append(("%kvq_plugin", os.path.join(config.kvq_lib_dir, "KVQPlugin.so")))
config.substitutions.append(("%kvq_src", config.kvq_src_root))
config.substitutions.append(("%kvq_obj", config.kvq_obj_root))
config.substitutions.append(("%mlir_lib_dir", config.mlir_lib_dir))
config.substitutions.append(("%cmake", config.cmake_command))
config.substitutions.append(("%cxx", config.cxx_compiler))

llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP"])
llvm_config.use_default_substitutions()

llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.kvq_tools_dir, append_path=True)

tools = [
    "kvq-opt",
    ToolSubst("%mlir-opt", os.path.join(config.llvm_tools_dir, "mlir-opt")),
    ToolSubst("%mlir-runner", os.path.join(config.llvm_tools_dir, "mlir-runner")),
]
llvm_config.add_tool_substitutions(tools, [config.kvq_tools_dir, config.llvm_tools_dir])

if config.ptxas and os.path.exists(config.ptxas):
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", config.ptxas))
if config.fuzzers in ("ON", "1", "TRUE", "YES"):
    config.available_features.add("fuzzers")
