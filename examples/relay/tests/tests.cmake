# writevv-relay tests: real clients (curl, ffmpeg/ffprobe, the loadgen),
# real bytes, loopback only, port 0.  Each script takes
#   RELAY LOADGEN LOADER MODE THREADS
# The kernel variants load the BPF program with writevv-loader when the relay
# reports it missing, and fail (never skip) if kernel mode cannot be used.
set(_relay_tests fanout churn http topics topics_deflate wsabuse ffmpeg_ws redis redishist stall)
set(_relay_timeout_fanout 240)
set(_relay_timeout_churn 180)
set(_relay_timeout_http 120)
set(_relay_timeout_topics 180)
set(_relay_timeout_topics_deflate 180)
set(_relay_timeout_wsabuse 180)
set(_relay_timeout_ffmpeg_ws 120)
set(_relay_timeout_redis 180)
set(_relay_timeout_redishist 120)
set(_relay_timeout_www 120)
set(_relay_timeout_stall 120)

function(_relay_add_test name script mode threads)
  add_test(NAME ${name}
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tests/${script}.sh
      $<TARGET_FILE:writevv-relay> $<TARGET_FILE:writevv-relay-loadgen>
      $<TARGET_FILE:writevv-loader> ${mode} ${threads})
  set(_labels relay relay-${mode})
  set_tests_properties(${name} PROPERTIES
    TIMEOUT ${_relay_timeout_${script}}
    LABELS "${_labels}"
    # The project's test pin directory, loaded by the loader_load fixture:
    # tests never touch a writevv the machine itself has loaded.
    ENVIRONMENT "WRITEVV_PIN_DIR=${WVV_TEST_PIN_DIR}"
    FIXTURES_REQUIRED bpf
    # Many client processes each: keep the relay tests from overlapping.
    RESOURCE_LOCK writevv_relay)
endfunction()

foreach(mode default kernel userland)
  foreach(t ${_relay_tests})
    _relay_add_test(relay_${t}_${mode} ${t} ${mode} 1)
  endforeach()
endforeach()
# Sharded sender threads (topics stay in the main thread beside them).
foreach(t fanout churn topics)
  _relay_add_test(relay_${t}_default_threads2 ${t} default 2)
endforeach()

# The pages: static files (www.sh, curl) in each mode; in a real headless
# Chromium (browser.sh) in the default and kernel modes, and in Firefox ESR
# in the default mode, their screenshots in the build tree.
foreach(mode default kernel userland)
  _relay_add_test(relay_www_${mode} www ${mode} 1)
endforeach()
set(_relay_timeout_browser 300)
_relay_add_test(relay_browser_default browser default 1)
set_property(TEST relay_browser_default APPEND PROPERTY ENVIRONMENT
  "RELAY_SCREENSHOTS=${CMAKE_BINARY_DIR}/relay-screenshots")
# The same through the BPF engine.
_relay_add_test(relay_browser_kernel browser kernel 1)
set_property(TEST relay_browser_kernel APPEND PROPERTY ENVIRONMENT
  "RELAY_SCREENSHOTS=${CMAKE_BINARY_DIR}/relay-screenshots/kernel")
# The same pages and checks in Firefox (over WebDriver BiDi).
_relay_add_test(relay_browser_firefox browser default 1)
set_property(TEST relay_browser_firefox APPEND PROPERTY ENVIRONMENT
  "RELAY_BROWSER=firefox" "RELAY_SCREENSHOTS=${CMAKE_BINARY_DIR}/relay-screenshots/firefox")
# The benchmark's WebSocket load client (loadgen ws) and Node server.
set(_relay_timeout_wsload 180)
_relay_add_test(relay_wsload_default wsload default 1)

# Pure logic of the parsers (CMocka).
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
add_executable(unit_relay_proto ${CMAKE_CURRENT_SOURCE_DIR}/tests/unit_relay_proto.c
  ${CMAKE_CURRENT_SOURCE_DIR}/http.c ${CMAKE_CURRENT_SOURCE_DIR}/ws.c)
target_include_directories(unit_relay_proto PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(unit_relay_proto PRIVATE PkgConfig::CMOCKA OpenSSL::Crypto ZLIB::ZLIB)
add_test(NAME unit_relay_proto COMMAND unit_relay_proto)
set_tests_properties(unit_relay_proto PROPERTIES LABELS "relay")
