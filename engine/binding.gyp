{
  "targets": [
    {
      "target_name": "sbs_engine",
      "sources": [
        "<!@(node -p \"require('fs').readdirSync('src').filter(f => f.endsWith('.cc')).map(f => 'src/' + f).join(' ')\")",
        "<!@(node -p \"require('fs').readdirSync('src/ops').filter(f => f.endsWith('.cc')).map(f => 'src/ops/' + f).join(' ')\")",
        "<!@(node -p \"require('fs').readdirSync('src/kernels').filter(f => f.endsWith('.cc')).map(f => 'src/kernels/' + f).join(' ')\")"
      ],
      "include_dirs": ["src", "<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++14"],
      "cflags": ["-O3", "-fno-math-errno", "-Wall", "-Wno-unknown-pragmas"],
      "cflags_cc": ["-std=c++17", "-fexceptions"],
      "ldflags": ["-pthread"]
    }
  ]
}
