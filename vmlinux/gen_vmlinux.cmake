# Generate vmlinux.h from the running kernel's BTF; fall back to the
# committed x86_64 header when BTF or bpftool is not available.
if(EXISTS /sys/kernel/btf/vmlinux AND BPFTOOL)
  execute_process(COMMAND ${BPFTOOL} btf dump file /sys/kernel/btf/vmlinux format c
                  OUTPUT_FILE ${OUT}.tmp RESULT_VARIABLE rc ERROR_QUIET)
  if(rc EQUAL 0)
    file(RENAME ${OUT}.tmp ${OUT})
    return()
  endif()
endif()
message(STATUS "vmlinux.h: using committed fallback ${FALLBACK}")
configure_file(${FALLBACK} ${OUT} COPYONLY)
