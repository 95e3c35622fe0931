# SPDX-License-Identifier: MIT
# uvorm_embed_migrations(<target> <dir> [SYMBOL <name>])
#
# Compiles the migrations of <dir> (<version>_<name>.up.sql / .down.sql)
# into <target> with `uvorm migrate embed`, regenerated whenever a file of
# <dir> changes, is added or goes. The source defines the array <name>
# (default: <target>_migrations, made a C identifier) and <name>_count:
#
#   ORM_MIGRATIONS_DECLARE(app_migrations);
#   orm_migrations_load_embedded(app_migrations, app_migrations_count,
#                                &set, err, sizeof err);
#
# A bad file fails the build, with the file and line.
function(uvorm_embed_migrations target dir)
  cmake_parse_arguments(PARSE_ARGV 2 ARG "" "SYMBOL" "")
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "uvorm_embed_migrations: unexpected ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(ARG_SYMBOL)
    set(symbol ${ARG_SYMBOL})
  else()
    string(MAKE_C_IDENTIFIER "${target}_migrations" symbol)
  endif()
  get_filename_component(dir "${dir}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  if(NOT IS_DIRECTORY "${dir}")
    message(FATAL_ERROR "uvorm_embed_migrations: ${dir} is not a directory")
  endif()
  # In this project's own build the program is built first; from an
  # installed package it is the imported one.
  if(TARGET uvorm_cli)
    set(tool uvorm_cli)
  elseif(TARGET uvorm::cli)
    set(tool uvorm::cli)
  else()
    message(FATAL_ERROR "uvorm_embed_migrations: no uvorm program (uvorm::cli)")
  endif()
  file(GLOB files CONFIGURE_DEPENDS "${dir}/*.sql")
  set(out "${CMAKE_CURRENT_BINARY_DIR}/${symbol}.c")
  add_custom_command(OUTPUT "${out}"
    COMMAND ${tool} migrate embed --quiet --dir "${dir}" --out "${out}"
            --symbol ${symbol}
    DEPENDS ${files} ${tool}
    COMMENT "Embedding the migrations of ${dir}"
    VERBATIM)
  target_sources(${target} PRIVATE "${out}")
endfunction()
