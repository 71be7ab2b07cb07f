# bpf_object(NAME SOURCE [OUTPUT_DIR dir] [DEPENDS file...] [SKELETON_NAME name])
#
# Compiles the BPF program SOURCE with clang against the committed
# bpf/vmlinux/<arch>/vmlinux.h and libbpf's headers, into
# OUTPUT_DIR/NAME.bpf.o, and generates its skeleton OUTPUT_DIR/NAME.skel.h
# with bpftool. Defines the custom target NAME_skel (add_dependencies on it)
# and, in the caller's scope, NAME_BPF_OBJ, NAME_SKEL and NAME_SKEL_DIR.
# The object names no path of the machine (the working directory is the
# source tree, mapped to "."), so that two builds of one source compare equal.
# Clang and bpftool are looked up at the first call: a build without BPF
# objects needs neither. (The shape of libbpf-bootstrap's bpf_object().)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(WVV_BPF_ARCH x86)
  set(WVV_VMLINUX_ARCH x86_64)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(WVV_BPF_ARCH arm64)
  set(WVV_VMLINUX_ARCH arm64)
else()
  set(WVV_VMLINUX_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()
set(WVV_VMLINUX_DIR ${CMAKE_SOURCE_DIR}/bpf/vmlinux/${WVV_VMLINUX_ARCH})

function(bpf_object NAME SOURCE)
  cmake_parse_arguments(ARG "" "OUTPUT_DIR;SKELETON_NAME" "DEPENDS" ${ARGN})
  if(NOT EXISTS ${WVV_VMLINUX_DIR}/vmlinux.h)
    message(FATAL_ERROR "no bpf/vmlinux/${WVV_VMLINUX_ARCH}/vmlinux.h: the BPF programs are "
      "built for x86_64 and arm64 only (bpf/vmlinux/README.md says how to add an "
      "architecture), or configure with -DWRITEVV_BUILD_LOADER=OFF -DWRITEVV_BUILD_BENCH=OFF "
      "-DWRITEVV_BUILD_TESTS=OFF for the library alone")
  endif()
  find_program(CLANG_BPF NAMES clang clang-16 clang-15 clang-14)
  find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /usr/local/sbin)
  if(NOT CLANG_BPF OR NOT BPFTOOL)
    message(FATAL_ERROR "building the BPF program ${SOURCE} needs clang and bpftool "
      "(Debian: clang, bpftool); the library alone needs neither: "
      "-DWRITEVV_BUILD_LOADER=OFF -DWRITEVV_BUILD_BENCH=OFF -DWRITEVV_BUILD_TESTS=OFF")
  endif()
  if(NOT ARG_OUTPUT_DIR)
    set(ARG_OUTPUT_DIR ${CMAKE_CURRENT_BINARY_DIR})
  endif()
  if(NOT ARG_SKELETON_NAME)
    set(ARG_SKELETON_NAME ${NAME}_bpf)
  endif()
  get_filename_component(src ${SOURCE} ABSOLUTE)
  get_filename_component(src_dir ${src} DIRECTORY)
  set(obj ${ARG_OUTPUT_DIR}/${NAME}.bpf.o)
  set(skel ${ARG_OUTPUT_DIR}/${NAME}.skel.h)
  set(incs -I${WVV_VMLINUX_DIR} -I${src_dir})
  foreach(d ${LIBBPF_INCLUDE_DIRS})
    list(APPEND incs -I${d})
  endforeach()
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${ARG_OUTPUT_DIR}
    COMMAND ${CLANG_BPF} -g -O2 -target bpf -D__TARGET_ARCH_${WVV_BPF_ARCH}
            -Wall -Werror ${incs} -ffile-prefix-map=${CMAKE_SOURCE_DIR}=.
            -c ${src} -o ${obj}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}
    DEPENDS ${src} ${ARG_DEPENDS} ${WVV_VMLINUX_DIR}/vmlinux.h
    COMMENT "Compiling BPF program ${NAME}.bpf.c"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${ARG_SKELETON_NAME} > ${skel}
    DEPENDS ${obj}
    COMMENT "Generating BPF skeleton ${NAME}.skel.h")
  add_custom_target(${NAME}_skel DEPENDS ${skel})
  set(${NAME}_BPF_OBJ ${obj} PARENT_SCOPE)
  set(${NAME}_SKEL ${skel} PARENT_SCOPE)
  set(${NAME}_SKEL_DIR ${ARG_OUTPUT_DIR} PARENT_SCOPE)
endfunction()
