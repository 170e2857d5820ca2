{
  # Built by scripts/build-native.mjs (npm install) with the node-gyp that ships with npm.
  "targets": [
    {
      "target_name": "supra_native",
      "sources": ["addon.cc", "kernels.cc", "kernels_vector.cc", "kernels_int8.cc", "gemm_bf16.cc", "helper_thread.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node -p \"process.env.SUPRA_OPENBLAS_INCLUDE_DIRS || ''\")"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      # no fused multiply-adds but the explicit ones: the elementwise kernels repeat the wasm kernels' roundings
      "cflags_cc": ["-ffp-contract=off"],
      # (gyp's macOS builds take C++ flags from xcode_settings, not cflags_cc; Apple clang contracts by default)
      "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["-ffp-contract=off"]},
      "libraries": ["<!@(node -p \"process.env.SUPRA_OPENBLAS_LIBS || '-lopenblas'\")"]
    }
  ]
}
