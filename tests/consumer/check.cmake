# SPDX-License-Identifier: MIT
# Run by ctest: install the build into a scratch prefix, then build and run
# tests/consumer with find_package(uvorm) (uvorm_embed_migrations() and the
# installed uvorm program too) and with pkg-config.
set(prefix ${UVORM_WORK_DIR}/prefix)
file(REMOVE_RECURSE ${UVORM_WORK_DIR})
file(MAKE_DIRECTORY ${UVORM_WORK_DIR})

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()

set(cflags "")
if(UVORM_SANITIZE)
  set(cflags "-fsanitize=address,undefined")
endif()

run(${CMAKE_COMMAND} --install ${UVORM_BUILD_DIR} --prefix ${prefix})

# find_package + target_link_libraries(uvorm::uvorm)
run(${CMAKE_COMMAND} -S ${UVORM_CONSUMER_SRC} -B ${UVORM_WORK_DIR}/cmake
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_C_COMPILER=${UVORM_C_COMPILER}
    "-DCMAKE_C_FLAGS=${cflags}")
run(${CMAKE_COMMAND} --build ${UVORM_WORK_DIR}/cmake)
run(${UVORM_WORK_DIR}/cmake/consumer)
run(${UVORM_WORK_DIR}/cmake/consumer_static)
run(${UVORM_WORK_DIR}/cmake/consumer_migrations)
run(${prefix}/bin/uvorm --version)

# pkg-config --cflags --libs uvorm
file(GLOB pcdirs ${prefix}/lib*/pkgconfig ${prefix}/lib/*/pkgconfig)
string(REPLACE ";" ":" pcpath "${pcdirs}")
set(ENV{PKG_CONFIG_PATH} "${pcpath}")
execute_process(COMMAND pkg-config --cflags --libs uvorm
  RESULT_VARIABLE rc OUTPUT_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config does not know the installed uvorm")
endif()
execute_process(COMMAND pkg-config --variable=libdir uvorm
  OUTPUT_VARIABLE libdir OUTPUT_STRIP_TRAILING_WHITESPACE)
separate_arguments(flags UNIX_COMMAND "${flags}")
separate_arguments(cflags UNIX_COMMAND "${cflags}")
run(${UVORM_C_COMPILER} ${cflags} ${UVORM_CONSUMER_SRC}/main.c ${flags}
    -Wl,-rpath,${libdir} -o ${UVORM_WORK_DIR}/consumer_pc)
run(${UVORM_WORK_DIR}/consumer_pc)
