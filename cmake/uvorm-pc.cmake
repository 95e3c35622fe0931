# SPDX-License-Identifier: MIT
# Run by `cmake --install`: writes uvorm.pc for the prefix being installed to
# and installs it. CMAKE_INSTALL_PREFIX here is the one given to --prefix.
foreach(_dir LIBDIR INCLUDEDIR)
  if(NOT IS_ABSOLUTE "${UVORM_PC_${_dir}}")
    set(UVORM_PC_${_dir} "${CMAKE_INSTALL_PREFIX}/${UVORM_PC_${_dir}}")
  endif()
endforeach()
set(UVORM_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
configure_file("${UVORM_PC_IN}" "${UVORM_PC_OUT}" @ONLY)
file(INSTALL "${UVORM_PC_OUT}" DESTINATION "${UVORM_PC_LIBDIR}/pkgconfig")
