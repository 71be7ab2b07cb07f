# Generate vmlinux.h from the running kernel's BTF; fall back to the
# committed x86_64 header when BTF or bpftool is not available.
get_filename_component(dir ${OUT} DIRECTORY)
file(MAKE_DIRECTORY ${dir})
if(EXISTS /sys/kernel/btf/vmlinux AND BPFTOOL)
  execute_process(COMMAND ${BPFTOOL} btf dump file /sys/kernel/btf/vmlinux format c
                  OUTPUT_FILE ${OUT}.tmp RESULT_VARIABLE rc ERROR_QUIET)
  if(rc EQUAL 0)
    file(RENAME ${OUT}.tmp ${OUT})
    message(STATUS "vmlinux.h: generated from /sys/kernel/btf/vmlinux")
    return()
  endif()
endif()
message(STATUS "vmlinux.h: using committed fallback ${FALLBACK}")
configure_file(${FALLBACK} ${OUT} COPYONLY)
