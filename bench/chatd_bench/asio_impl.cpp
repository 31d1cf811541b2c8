// The one translation unit that compiles Asio and Beast for chatd-bench (the
// root CMakeLists sets BOOST_ASIO_SEPARATE_COMPILATION and
// BOOST_BEAST_SEPARATE_COMPILATION), so the tool links none of chatd's own
// libraries.
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
