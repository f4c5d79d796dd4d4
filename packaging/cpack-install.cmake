# cpack-install.cmake - run by cpack (CPACK_INSTALL_SCRIPTS) before it installs the build tree into its
# staging directory. It tells install.cmake, which runs next in the same process, that this install is
# the Debian package's: a cpack run sets no variable of its own that the install scripts can see.
set(ENV{MQ_INSTALL_FOR_PACKAGE} 1)
