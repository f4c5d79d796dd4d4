# install.cmake - the install steps whose paths depend on the prefix of the install itself, run by
# `cmake --install` and by cpack (which installs with prefix /usr into its staging directory, DESTDIR).
# configure_file-time paths would be wrong for one of them: the build tree is configured once, with
# /usr/local by default, and packaged for /usr.
#
# - The example configuration from conf/ goes to SYSCONFDIR/mqlog. A file that is there already and
#   differs (the operator's edit) is never overwritten: the example goes beside it as FILE.example.
# - The systemd unit is configured with the programs and configuration where this install puts them.
#   A source install runs the daemon as a user systemd allocates (DynamicUser); the Debian package
#   (MQ_INSTALL_FOR_PACKAGE, set by cpack-install.cmake) runs it as the system user mqlog its postinst
#   makes, owns /var/lib/mqlog and adds the files Debian asks for (copyright, changelog).
#
# Set by packaging/CMakeLists.txt before this runs: MQ_SOURCE_DIR, MQ_BINARY_DIR, MQ_SYSCONFDIR (as
# CMAKE_INSTALL_SYSCONFDIR: relative to the prefix, or absolute), MQ_BINDIR, MQ_DOCDIR (relative).

# GNUInstallDirs' rule for SYSCONFDIR applied to this install's prefix: /usr gives /etc, /opt/NAME gives
# /etc/opt/NAME, any other prefix PREFIX/etc.
if(IS_ABSOLUTE "${MQ_SYSCONFDIR}")
  set(_mq_etc "${MQ_SYSCONFDIR}/mqlog")
elseif(CMAKE_INSTALL_PREFIX MATCHES "^/usr/?$")
  set(_mq_etc "/${MQ_SYSCONFDIR}/mqlog")
elseif(CMAKE_INSTALL_PREFIX MATCHES "^/opt/([^/]+)/?$")
  set(_mq_etc "/${MQ_SYSCONFDIR}/opt/${CMAKE_MATCH_1}/mqlog")
else()
  set(_mq_etc "${CMAKE_INSTALL_PREFIX}/${MQ_SYSCONFDIR}/mqlog")
endif()
set(_mq_package "$ENV{MQ_INSTALL_FOR_PACKAGE}")

# The configuration: new files installed, identical ones left alone, edited ones kept.
file(GLOB_RECURSE _mq_conf RELATIVE "${MQ_SOURCE_DIR}/conf" "${MQ_SOURCE_DIR}/conf/*")
list(SORT _mq_conf)
foreach(_rel ${_mq_conf})
  get_filename_component(_sub "${_rel}" DIRECTORY)
  get_filename_component(_name "${_rel}" NAME)
  set(_src "${MQ_SOURCE_DIR}/conf/${_rel}")
  set(_dst "$ENV{DESTDIR}${_mq_etc}/${_rel}")
  if(NOT EXISTS "${_dst}")
    file(INSTALL "${_src}" DESTINATION "${_mq_etc}/${_sub}")
  else()
    file(SHA256 "${_src}" _want)
    file(SHA256 "${_dst}" _have)
    if(_want STREQUAL _have)
      message(STATUS "Up-to-date: ${_dst}")
    else()
      message(STATUS "Kept: ${_dst} (it differs from the example, which goes to ${_name}.example)")
      file(INSTALL "${_src}" DESTINATION "${_mq_etc}/${_sub}" RENAME "${_name}.example")
    endif()
  endif()
endforeach()

# The unit. Debian (bookworm) keeps units of /usr packages in /lib/systemd/system; systemd also reads
# PREFIX/lib/systemd/system for /usr/local.
if(CMAKE_INSTALL_PREFIX MATCHES "^/usr/?$")
  set(_mq_unitdir "/lib/systemd/system")
else()
  set(_mq_unitdir "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
endif()
set(MQ_BIN_DIR "${CMAKE_INSTALL_PREFIX}/${MQ_BINDIR}")
set(MQ_CONFIG_FILE "${_mq_etc}/mqlogd.yaml")
set(MQ_DOC_DIR "${CMAKE_INSTALL_PREFIX}/${MQ_DOCDIR}")
if(_mq_package)
  set(MQ_UNIT_USER "User=mqlog\nGroup=mqlog")
else()
  set(MQ_UNIT_USER "DynamicUser=yes")
endif()
configure_file("${MQ_SOURCE_DIR}/systemd/mqlogd.service.in" "${MQ_BINARY_DIR}/install/mqlogd.service" @ONLY)
file(INSTALL "${MQ_BINARY_DIR}/install/mqlogd.service" DESTINATION "${_mq_unitdir}")

if(_mq_package)
  # The store's directory belongs to the package (postinst gives it to the mqlog user; purge removes it).
  # A source install leaves it to systemd's StateDirectory=, which with DynamicUser= moves a directory it
  # did not make into /var/lib/private.
  file(MAKE_DIRECTORY "$ENV{DESTDIR}/var/lib/mqlog")
  file(INSTALL "${MQ_SOURCE_DIR}/packaging/deb/copyright" DESTINATION "${MQ_DOC_DIR}")
  execute_process(COMMAND gzip -9n -c "${MQ_BINARY_DIR}/changelog"
                  OUTPUT_FILE "${MQ_BINARY_DIR}/install/changelog.gz" RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "gzip ${MQ_BINARY_DIR}/changelog failed: ${_rc}")
  endif()
  file(INSTALL "${MQ_BINARY_DIR}/install/changelog.gz" DESTINATION "${MQ_DOC_DIR}")
endif()
